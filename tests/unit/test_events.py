import pytest

from orchestrator.contract.events import InvalidEvent, parse_event

GOOD = (
    b'{"event_id":"e-1","type":"cart_add","occurred_at":"2026-03-02T10:00:00Z","channel":"web",'
    b'"customer_id":"c-42","properties":{"sku":"SKU-1","price":59.9,"name":"Sneaker"}}'
)


def test_a_good_event_gets_its_customer_key_and_normalised_properties() -> None:
    event = parse_event(GOOD)
    assert (event.id, event.type, event.channel, event.customer) == ("e-1", "cart_add", "web", "c-42")
    assert event.data["properties"] == {"sku": "SKU-1", "price": 59.9, "quantity": 1, "name": "Sneaker"}
    anonymous = parse_event(GOOD.replace(b'"customer_id":"c-42"', b'"anonymous_id":"ck-9"'))
    assert anonymous.customer == "anon:ck-9"


def test_unknown_fields_are_kept_for_event_paths() -> None:
    event = parse_event(GOOD.replace(b'"channel":"web"', b'"channel":"web","campaign":"spring"'))
    assert event.data["campaign"] == "spring"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (GOOD.replace(b'"event_id":"e-1",', b""), "event_id: missing required field"),
        (GOOD.replace(b"2026-03-02T10:00:00Z", b"2026-03-02T10:00:00"), "occurred_at: .*no UTC offset"),
        (GOOD.replace(b'"channel":"web"', b'"channel":"Web Shop"'), "channel: string should match pattern"),
        (GOOD.replace(b'"customer_id":"c-42"', b'"other":"x"'), "needs customer_id, anonymous_id or identities"),
        (GOOD.replace(b'"price":59.9', b'"price":"cheap"'), "cart_add properties: price"),
        (GOOD.replace(b'"sku":"SKU-1",', b""), "cart_add properties: sku: missing"),
        (GOOD.replace(b'"properties":{', b'"properties":[{').replace(b"}}", b"}]}"), "properties: input should be"),
    ],
)
def test_bad_events_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_event(raw)


def test_consent_update_needs_a_real_boolean() -> None:
    raw = GOOD.replace(b'"type":"cart_add"', b'"type":"consent_update"').replace(
        b'{"sku":"SKU-1","price":59.9,"name":"Sneaker"}', b'{"channel":"email","granted":"yes"}'
    )
    with pytest.raises(InvalidEvent, match="granted"):
        parse_event(raw)
