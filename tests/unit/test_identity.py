"""Identity resolution rules, on a plain dict as the graph."""

from orchestrator.engine.identity import Resolution, identifier_key, normalise, resolve

SECRET = b"test-secret"


def key(kind: str, value: str) -> str:
    return identifier_key(kind, value, SECRET)


def test_normalisation_and_keyed_hashing() -> None:
    assert normalise("email", "  Anna.Rossi@Example.COM ") == "anna.rossi@example.com"
    assert normalise("phone", "0039 (333) 123-4567") == "+393331234567"
    assert normalise("phone", "+39 333 1234567") == "+393331234567"
    assert key("email", "Anna@Example.com ") == key("email", "anna@example.com")
    assert key("email", "anna@example.com").startswith("email:")
    assert "anna" not in key("email", "anna@example.com")
    assert identifier_key("email", "anna@example.com", b"other") != key("email", "anna@example.com")
    assert key("phone", "0039 333 1234567") == key("phone", "+393331234567")


def test_a_customer_id_claims_every_identifier_and_absorbs_anonymous_ones() -> None:
    cookie, card = "anonymous_id:ck-9", key("loyalty_card", "L-1")
    graph = {cookie: "anon:ck-9"}
    assert resolve("c-42", [cookie, card], graph) == Resolution(
        "c-42", links={cookie: "c-42", card: "c-42"}, merges=["anon:ck-9"]
    )


def test_an_event_without_customer_id_finds_the_known_customer() -> None:
    card = key("loyalty_card", "L-1")
    graph = {card: "c-42"}
    resolution = resolve(None, ["anonymous_id:beacon-7", card], graph)
    assert resolution.customer == "c-42"
    assert resolution.links == {"anonymous_id:beacon-7": "c-42"}


def test_unknown_identifiers_make_an_anonymous_customer_keyed_by_the_first() -> None:
    email = key("email", "x@example.com")
    resolution = resolve(None, ["anonymous_id:ck-1", email], {})
    assert resolution.customer == "anon:ck-1"  # the event contract's key for an anonymous_id
    assert resolution.links == {"anonymous_id:ck-1": resolution.customer, email: resolution.customer}
    assert resolve(None, ["anonymous_id:ck-1"], resolution.links).customer == resolution.customer
    assert resolve(None, [email], {}).customer == f"anon:{email}"


def test_two_known_customers_are_never_merged() -> None:
    email = key("email", "shared@example.com")
    graph = {email: "c-1"}
    moved = resolve("c-2", [email], graph)
    assert moved.customer == "c-2" and moved.merges == [] and moved.conflicts == [(email, "c-1")]
    assert moved.links == {email: "c-2"}  # the identifier moves to the newer customer
    ambiguous = resolve(None, [email, "device_id:d"], {email: "c-1", "device_id:d": "c-2"})
    assert ambiguous.customer == "c-1" and ambiguous.links == {} and ambiguous.merges == []
