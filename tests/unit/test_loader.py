"""`validate`'s messages: every problem with its file, line and step, in words."""

from pathlib import Path

import pytest

from orchestrator.contract.loader import load

VALID = """\
id: cart
trigger: {event: cart_add}
steps:
  - wait: 30m
  - send: {channel: email, template: reminder}
"""


def problems(tmp_path: Path, text: str, name: str = "j.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    return [str(p) for p in load([tmp_path]).problems]


def test_a_valid_journey_has_no_problem(tmp_path: Path) -> None:
    (tmp_path / "j.yaml").write_text(VALID)
    loaded = load([tmp_path])
    assert loaded.ok and [j.id for j in loaded.journeys] == ["cart"]
    assert loaded.policy_file is None and loaded.policy.consent_required == ("email", "sms", "push")


def test_the_shipped_journeys_are_valid() -> None:
    loaded = load([Path(__file__).parents[2] / "journeys"])
    assert loaded.problems == []
    assert {j.id for j in loaded.journeys} >= {"abandoned-cart", "web-to-store", "post-purchase", "welcome"}
    assert loaded.policy_file is not None


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("  - wait: 30m", "  - pause: 30m", "j.yaml:4: steps.0: unknown step type 'pause'"),
        ("wait: 30m", "wait: 30x", "j.yaml:4: steps.0.wait: bad duration '30x'"),
        ("wait: 30m", "wait: 30", "j.yaml:4: steps.0.wait: bad duration 30: add a unit"),
        ("{channel: email, template: reminder}", "{template: reminder}",
         "j.yaml:5: steps.1.send: missing required field 'channel'"),
        ("{event: cart_add}", "{event: cart_add, where: {event.channel: {like: web}}}",
         "j.yaml:2: trigger.where: unknown operator 'like'"),
        ("{event: cart_add}", "{event: cart_add, where: {cart.value: 1}}",
         "j.yaml:2: trigger.where: unknown path root 'cart'"),
        ("id: cart", "id: Cart Reminder", "j.yaml:1: id: bad journey id 'Cart Reminder'"),
        ("trigger:", "trigger:\nholdout: lots\ntriger:", "j.yaml:3: holdout: bad percentage 'lots'"),
        ("template: reminder}", "template: reminder, chanel: sms}",
         "j.yaml:5: steps.1.send: unknown field 'chanel' (did you mean 'channel'?)"),
        ("  - wait: 30m", "  - split: [{weight: 0, steps: [exit]}, {weight: 1, steps: []}]",
         "j.yaml:4: steps.0.split.0.weight: must be greater than 0 (got the number 0)"),
        ("  - wait: 30m", "  - wait_until: {time: \"25:00\"}", "j.yaml:4: steps.0.wait_until.time: bad time of day"),
        ("  - wait: 30m", "  - {wait: 1m, send: {channel: sms, template: t}}",
         "j.yaml:4: steps.0: a step has exactly one type, this one has wait and send"),
        ("steps:", "reentry: sometimes\nsteps:", "j.yaml:3: reentry: bad reentry 'sometimes'"),
        ("steps:", "priority: 101\nsteps:", "j.yaml:3: priority: must be at most 100 (got the number 101)"),
    ],
)  # fmt: skip
def test_problems_name_file_line_step_and_cause(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in VALID
    found = problems(tmp_path, VALID.replace(replace, by, 1))
    assert any(str(tmp_path / expected.split(":", 1)[0]) + ":" + expected.split(":", 1)[1] in p for p in found), found


def test_nested_steps_are_located(tmp_path: Path) -> None:
    text = (
        VALID
        + """\
  - wait_for: {event: store_visit, timeout: 3d}
    on_timeout:
      - send: {channel: push, template: last-call}
      - if: {profile.tier: gold}
        then: [{sned: {channel: sms}}]
"""
    )
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path}/j.yaml:10: steps.2.on_timeout.1.then.0: unknown step type 'sned': "
                     "use one of wait, wait_until, wait_for, send, decide, if, split, exit"]  # fmt: skip


def test_yaml_syntax_errors_and_duplicate_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, "id: x\nsteps: [\n")[0].startswith(f"{tmp_path}/j.yaml:3: not valid YAML")
    found = problems(tmp_path, VALID + "id: other\n")
    assert found == [f"{tmp_path}/j.yaml:6: id: key 'id' is given twice"]


def test_duplicate_journey_ids_and_step_ids(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    (tmp_path / "c.yaml").write_text(VALID.replace("id: cart", "id: cart\nversion: 2"))  # a new version is fine
    (tmp_path / "d.yaml").write_text(
        VALID.replace("id: cart", "id: steps")
        .replace("  - wait", "  - id: w\n    wait")
        .replace("  - send", "  - id: w\n    send")
    )
    found = [str(p) for p in load([tmp_path]).problems]
    assert found == [
        f"{tmp_path}/b.yaml:1: id: duplicate journey id 'cart' version 1 (also in {tmp_path}/a.yaml)",
        f"{tmp_path}/d.yaml:6: steps.1: duplicate step id 'w' (also at steps.0)",
    ]


def test_policy_file_problems(tmp_path: Path) -> None:
    found = problems(tmp_path, "default_timezone: Mars/Olympus\nmax_per_day: {email: -1}\n", "policy.yaml")
    assert found[0].endswith("policy.yaml:1: default_timezone: unknown time zone 'Mars/Olympus': "
                             "use an IANA name such as Europe/Rome or UTC")  # fmt: skip
    assert "policy.yaml:2: max_per_day.email: must be at least 0" in found[1]


def test_missing_paths_and_empty_files(tmp_path: Path) -> None:
    assert [str(p) for p in load([tmp_path / "nope"]).problems] == [f"{tmp_path}/nope: no such file or folder"]
    assert problems(tmp_path, "") == [f"{tmp_path}/j.yaml:1: the file is empty: a journey needs id, trigger and steps"]
    assert problems(tmp_path, "- 1\n") == [f"{tmp_path}/j.yaml:1: a journey must be a YAML mapping, got list"]


# ---------------------------------------------------------------------- offers.yaml and decide steps

OFFERS = """\
offers:
  - id: cart-10
    channel: instore
    template: store-coupon
    where: {profile.cart_value: {gte: 30}}
    score: {base: 10, weights: {profile.lifetime_value: 0.01}}
    cap: {max: 1, within: 30d}
    valid: {from: "2026-03-01T00:00:00Z", until: "2026-04-01T00:00:00Z"}
    tags: [store]
  - id: free-gift
    channel: instore
    template: store-free-gift
    tags: [store]
"""
DECIDES = """\
id: nba
trigger: {event: store_visit}
steps:
  - id: store-offer
    decide:
      offers: [cart-10, free-gift]
      pick: 1
  - id: by-tag
    decide:
      offers: {tags: [store]}
"""
JARGON = ("[key]", "type=", "validation error", "Value error", "input_value", "union_tag", "model_type")


def offer_problems(tmp_path: Path, offers: str = OFFERS, decides: str = DECIDES) -> list[str]:
    (tmp_path / "offers.yaml").write_text(offers)
    (tmp_path / "nba.yaml").write_text(decides)
    found = [str(p) for p in load([tmp_path]).problems]
    assert not [p for p in found if any(word in p for word in JARGON)], found
    return found


def test_a_valid_catalogue_and_decide_steps_have_no_problem(tmp_path: Path) -> None:
    (tmp_path / "offers.yaml").write_text(OFFERS)
    (tmp_path / "nba.yaml").write_text(DECIDES)
    loaded = load([tmp_path])
    assert loaded.problems == [] and [o.id for o in loaded.catalogue.offers] == ["cart-10", "free-gift"]
    assert loaded.catalogue_file == str(tmp_path / "offers.yaml") and [j.id for j in loaded.journeys] == ["nba"]


@pytest.mark.parametrize(
    ("file", "replace", "by", "expected"),
    [
        ("nba.yaml", "[cart-10, free-gift]", "[cart-10, free-gfit]",
         "nba.yaml:6: steps.0.decide.offers: unknown offer 'free-gfit': not in OFFERS (did you mean 'free-gift'?)"),
        ("nba.yaml", "{tags: [store]}", "{tags: [stores]}",
         "nba.yaml:10: steps.1.decide.offers: no offer in OFFERS has the tag 'stores'"),
        ("nba.yaml", "pick: 1", "pick: 0",
         "nba.yaml:7: steps.0.decide.pick: must be at least 1"),
        ("nba.yaml", "{tags: [store]}", "{tags: []}",
         "nba.yaml:10: steps.1.decide.offers: tags must list at least one tag, e.g. {tags: [store]}, got []"),
        ("nba.yaml", "{tags: [store]}", "{tag: [store]}",
         "nba.yaml:10: steps.1.decide.offers: unknown field 'tag': write a list of offer ids such as"),
        ("nba.yaml", "{tags: [store]}", "store",
         "nba.yaml:10: steps.1.decide.offers: offers: write a list of offer ids"),
        ("nba.yaml", "[cart-10, free-gift]", "[]", "nba.yaml:6: steps.0.decide.offers: offers must name at least one"),
        ("nba.yaml", "pick: 1", "pick: 1\n      explore: lots", "nba.yaml:8: steps.0.decide.explore: bad percentage"),
        ("offers.yaml", "profile.lifetime_value: 0.01", "profil.x: 0.01",
         "offers.yaml:6: offers.0.score.weights.profil.x: unknown path root 'profil' in 'profil.x'"),
        ("offers.yaml", "within: 30d", "within: 30x", "offers.yaml:7: offers.0.cap.within: bad duration '30x'"),
        ("offers.yaml", "    channel: instore\n    template: store-coupon\n", "    template: store-coupon\n",
         "offers.yaml:2: offers.0: missing required field 'channel'"),
        ("offers.yaml", "    template: store-free-gift\n", "",
         "offers.yaml:10: offers.1: missing required field 'template'"),
        ("offers.yaml", "id: free-gift", "id: cart-10",
         "offers.yaml:10: offers.1.id: duplicate offer id 'cart-10' (also at offers.0)"),
        ("offers.yaml", "id: cart-10", "id: Cart_10",
         "offers.yaml:2: offers.0.id: bad offer id 'Cart_10': use lower-case letters, digits and dashes"),
        ("offers.yaml", 'until: "2026-04-01T00:00:00Z"', 'until: "2026-02-01T00:00:00Z"',
         "offers.yaml:8: offers.0.valid: valid.until must be later than valid.from"),
        ("offers.yaml", 'from: "2026-03-01T00:00:00Z"', 'from: "2026-03-01T00:00:00"',
         "offers.yaml:8: offers.0.valid.from: time '2026-03-01T00:00:00' has no UTC offset"),
        ("offers.yaml", "score: {base: 10,", "score: {bsae: 10,",
         "offers.yaml:6: offers.0.score: unknown field 'bsae' (did you mean 'base'?)"),
        ("offers.yaml", "    tags: [store]\n  - id: free", "    priority: 101\n    tags: [store]\n  - id: free",
         "offers.yaml:9: offers.0.priority: must be at most 100"),
        ("offers.yaml", "{max: 1,", "{max: 0,",
         "offers.yaml:7: offers.0.cap.max: must be at least 1"),
        ("offers.yaml", "channel: instore\n    template: store-coupon", "channel: in store\n    template: store-coupon",
         "offers.yaml:3: offers.0.channel: must match the pattern"),
        ("offers.yaml", "{profile.cart_value: {gte: 30}}", "{profile.cart_value: {like: 30}}",
         "offers.yaml:5: offers.0.where: unknown operator 'like'"),
    ],
)  # fmt: skip
def test_offer_and_decide_problems_name_file_line_and_cause(
    tmp_path: Path, file: str, replace: str, by: str, expected: str
) -> None:
    texts = {"offers.yaml": OFFERS, "nba.yaml": DECIDES}
    assert replace in texts[file]
    texts[file] = texts[file].replace(replace, by, 1)
    found = offer_problems(tmp_path, texts["offers.yaml"], texts["nba.yaml"])
    name, rest = expected.split(":", 1)
    wanted = f"{tmp_path / name}:{rest}".replace("OFFERS", str(tmp_path / "offers.yaml"))
    assert [p for p in found if p.startswith(wanted)] and len(found) == 1, found


def test_decide_steps_without_offers_yaml_name_the_missing_catalogue(tmp_path: Path) -> None:
    (tmp_path / "nba.yaml").write_text(DECIDES)
    found = [str(p) for p in load([tmp_path]).problems]
    missing = "(there is no offers.yaml: the offer catalogue goes beside the journeys)"
    assert found == [
        f"{tmp_path}/nba.yaml:6: steps.0.decide.offers: unknown offer 'cart-10': not in offers.yaml {missing}",
        f"{tmp_path}/nba.yaml:6: steps.0.decide.offers: unknown offer 'free-gift': not in offers.yaml {missing}",
        f"{tmp_path}/nba.yaml:10: steps.1.decide.offers: no offer in offers.yaml has the tag 'store' {missing}",
    ]


def test_a_broken_catalogue_is_reported_once_not_as_unknown_offers(tmp_path: Path) -> None:
    broken = OFFERS.replace("within: 30d", "within: 30x").replace("store-free-gift", "store-free-gift\n    chanel: sms")
    found = offer_problems(tmp_path, broken)
    assert [p.split(": ", 2)[1] for p in found] == ["offers.0.cap.within", "offers.1"]
    assert "unknown field 'chanel' (did you mean 'channel'?)" in found[1]
    bad_yaml = offer_problems(tmp_path, "offers: [\n")
    assert len(bad_yaml) == 1 and "offers.yaml:2: not valid YAML" in bad_yaml[0]


def test_decide_problems_in_nested_steps_are_located(tmp_path: Path) -> None:
    nested = DECIDES + """\
  - wait_for: {event: purchase, timeout: 1d}
    on_timeout:
      - decide: {offers: [free-gift]}
        on_none:
          - decide: {offers: [nope]}
"""
    found = offer_problems(tmp_path, decides=nested)
    assert found == [f"{tmp_path}/nba.yaml:15: steps.2.on_timeout.0.on_none.0.decide.offers: unknown offer 'nope': "
                     f"not in {tmp_path}/offers.yaml"]  # fmt: skip


def test_duplicate_step_and_offer_ids_are_reported_beside_every_other_problem(tmp_path: Path) -> None:
    """Every problem, every time: a repeated id used to show only once the file had no other problem."""
    journey = VALID.replace("  - wait", "  - id: w\n    wait").replace("  - send", "  - id: w\n    sned")
    (tmp_path / "j.yaml").write_text(journey)
    offers = OFFERS.replace("id: free-gift", "id: cart-10").replace("{max: 1,", "{max: 0,")
    (tmp_path / "offers.yaml").write_text(offers)
    found = [str(p).removeprefix(f"{tmp_path}/") for p in load([tmp_path]).problems]
    assert "j.yaml:6: steps.1: duplicate step id 'w' (also at steps.0)" in found
    assert any(p.startswith("j.yaml:6: steps.1: unknown step type 'sned'") for p in found), found
    assert "offers.yaml:10: offers.1.id: duplicate offer id 'cart-10' (also at offers.0)" in found
    assert any(p.startswith("offers.yaml:7: offers.0.cap.max: must be at least 1") for p in found), found
    assert len(found) == 4, found
