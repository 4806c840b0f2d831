"""Segments (segments.yaml): membership equals the segment's condition, `{segment: NAME}` works wherever a
condition does, and `validate` names file, line and place of each kind of mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.contract.conditions import compile_condition, compile_segments
from orchestrator.contract.loader import load
from orchestrator.engine import CustomerState, Engine
from orchestrator.measurement.audience import members
from orchestrator.simulate import simulate
from tests.helpers import OPEN_POLICY, ev, journey

DEFINITIONS: dict[str, Any] = {
    "vip": {"profile.lifetime_value": {"gte": 500}},
    "gold": {"profile.traits.tier": "gold"},
    "vip-gold": {"all": [{"segment": "vip"}, {"segment": "gold"}]},
    "not-vip": {"not": {"segment": "vip"}},
    "either": {"any": [{"segment": "vip-gold"}, {"profile.orders": {"gte": 3}}]},
}
PROFILES = st.fixed_dictionaries({
    "lifetime_value": st.one_of(st.integers(0, 1000), st.floats(0, 1000, allow_nan=False)),
    "orders": st.integers(0, 5),
    "traits": st.fixed_dictionaries({}, optional={"tier": st.sampled_from(["gold", "silver", ""])}),
})  # fmt: skip


@given(PROFILES)
def test_membership_equals_the_segments_condition(profile: dict[str, Any]) -> None:
    segments = compile_segments(DEFINITIONS)
    scope = ({}, {}, profile, 0)
    vip = profile["lifetime_value"] >= 500
    gold = profile["traits"].get("tier") == "gold"
    assert segments["vip"](scope) is vip
    assert segments["gold"](scope) is gold
    assert segments["vip-gold"](scope) is (vip and gold)
    assert segments["not-vip"](scope) is (not vip)
    assert segments["either"](scope) is ((vip and gold) or profile["orders"] >= 3)
    assert compile_condition({"segment": "vip-gold"}, segments)(scope) is (vip and gold)


def test_a_segment_holds_as_of_the_instant_it_is_asked_at() -> None:
    """`profile.recent` counts at the instant: a lapsed buyer becomes lapsed 30 days after the purchase."""
    segments = compile_segments({"lapsed": {"all": [{"profile.orders": {"gte": 1}},
                                                    {"profile.recent.purchase.30d": {"eq": 0}}]}})  # fmt: skip
    day = 86_400_000
    profile = {"orders": 1, "recent": {"purchase": [10 * day]}}
    assert not segments["lapsed"](({}, {}, profile, 20 * day))
    assert segments["lapsed"](({}, {}, profile, 40 * day + 1))


def test_members_are_the_known_customers_that_match_in_key_order() -> None:
    states = {key: CustomerState(key) for key in ("c-2", "anon:x", "c-1", "c-3")}
    states["c-3"].profile["lifetime_value"] = 900
    states["c-1"].profile["lifetime_value"] = 500
    segments = compile_segments(DEFINITIONS)
    assert members(segments, states, "vip", 0) == ["c-1", "c-3"]
    assert members(segments, states, "all", 0) == ["c-1", "c-2", "c-3"]  # anonymous visitors never are


def test_segments_work_in_if_where_and_becomes() -> None:
    flows = [journey("""id: tiers
trigger: {event: purchase, where: {segment: buyers}}
reentry: always
steps:
  - if: {segment: vip}
    then: [{send: {channel: email, template: vip}}]
    else: [{send: {channel: email, template: regular}}]
"""), journey("""id: welcome-vip
trigger: {becomes: {segment: vip}}
steps:
  - send: {channel: push, template: welcome-vip}
""")]
    engine = Engine(flows, OPEN_POLICY, segments={"vip": {"profile.lifetime_value": {"gte": 100}},
                                                  "buyers": {"profile.orders": {"gte": 1}}})  # fmt: skip
    events = [ev("purchase", "2026-03-02T10:00:00Z", order_id="o1", value=60),
              ev("purchase", "2026-03-02T11:00:00Z", order_id="o2", value=60),
              ev("purchase", "2026-03-02T12:00:00Z", order_id="o3", value=60)]  # fmt: skip
    result = simulate(engine, events)
    assert [(a["at"], a["template"]) for a in result.actions] == [
        ("2026-03-02T10:00:00Z", "regular"),
        ("2026-03-02T11:00:00Z", "vip"),  # 120: a vip, after the purchase (the trigger sees the profile after it)
        ("2026-03-02T11:00:00Z", "welcome-vip"),  # became a vip with that purchase: once
        ("2026-03-02T12:00:00Z", "vip"),
    ]


def write(folder: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (folder / name).write_text(text)
    return [str(p).removeprefix(f"{folder}/") for p in load([folder]).problems]


JOURNEY = """id: j
trigger: {event: purchase, where: {segment: vip}}
steps:
  - if: {all: [{segment: buyers}, {profile.orders: {gte: 1}}]}
    then: [{send: {channel: email, template: t}}]
"""
SEGMENTS = """segments:
  vip: {profile.lifetime_value: {gte: 500}}
  buyers: {profile.orders: {gte: 1}}
"""


def test_a_valid_folder_with_segments_loads_them(tmp_path: Path) -> None:
    assert write(tmp_path, {"j.yaml": JOURNEY, "segments.yaml": SEGMENTS}) == []
    assert sorted(load([tmp_path]).segments) == ["buyers", "vip"]


def test_validate_names_each_kind_of_segment_mistake_with_file_and_line(tmp_path: Path) -> None:
    segments = SEGMENTS + """  loop-a: {segment: loop-b}
  loop-b: {any: [{segment: loop-a}, {profile.orders: 0}]}
  Odd_Name: {profile.orders: 1}
  eventful: {event.type: purchase}
"""
    found = write(tmp_path, {"j.yaml": JOURNEY.replace("segment: buyers", "segment: buyer"),
                             "segments.yaml": segments,
                             "offers.yaml": "offers:\n  - id: o\n    channel: email\n    template: t\n"
                                            "    where: {segment: nobody}\n"})  # fmt: skip
    assert found == [
        "segments.yaml:6: segments.Odd_Name: bad segment name 'Odd_Name': use lower-case letters, digits and dashes "
        "('all' is every known customer)",
        "segments.yaml:7: segments.eventful: segment 'eventful' reads 'event.type': a segment reads only profile. "
        "paths (it holds for a customer at any instant, without an event)",
        "j.yaml:4: steps.0.if.all.0.segment: unknown segment 'buyer' (did you mean 'buyers'?)",
        "offers.yaml:5: offers.0.where.segment: unknown segment 'nobody'",
        "segments.yaml:4: segments.loop-a: segments name each other in a cycle: loop-a -> loop-b -> loop-a",
    ]


def test_without_segments_yaml_a_segment_name_says_where_they_go(tmp_path: Path) -> None:
    assert write(tmp_path, {"j.yaml": JOURNEY}) == [
        "j.yaml:2: trigger.where.segment: unknown segment 'vip' (there is no segments.yaml: the segments go beside "
        "the journeys)",
        "j.yaml:4: steps.0.if.all.0.segment: unknown segment 'buyers' (there is no segments.yaml: the segments go "
        "beside the journeys)",
    ]
    found = write(tmp_path, {"j.yaml": JOURNEY.replace("{segment: vip}", "{segment: 7}")})
    assert found[0].startswith("j.yaml:2: trigger.where: segment takes the name of a segment of segments.yaml")
