"""What the contract decides where it used to be silent: each decision as docs/contract.md states it."""

from __future__ import annotations

from pathlib import Path

from orchestrator.contract.loader import load
from tests.helpers import ev, journey, kinds, run, sends

CART = """
id: cart
trigger: {event: cart_add, where: WHERE}
steps: [{send: {channel: email, template: t}}]
"""


def test_entry_inside_a_trigger_is_the_triggering_event() -> None:
    j = journey(CART.replace("WHERE", "{entry.channel: app}"))
    result = run(j, [ev("cart_add", "2026-03-01T10:00:00Z", via="app", sku="A", price=1),
                     ev("cart_add", "2026-03-01T10:00:00Z", customer="c-2", via="web", sku="A", price=1)])  # fmt: skip
    assert [a["customer_id"] for a in result.actions] == ["c-1"]


def test_ne_and_not_in_hold_for_a_missing_value() -> None:
    j = journey(CART.replace("WHERE", "{profile.traits.tier: {ne: gold}}"))
    assert len(run(j, [ev("cart_add", "2026-03-01T10:00:00Z", sku="A", price=1)]).actions) == 1


def test_a_goal_window_includes_its_end() -> None:
    j = journey("""
id: g
trigger: {event: cart_add}
goal: {event: purchase, within: 1h}
steps: [{send: {channel: email, template: t}}]
""")
    def converted(at: str) -> int:
        events = [ev("cart_add", "2026-03-01T10:00:00Z", sku="A", price=1),
                  ev("purchase", at, order_id="o", value=1)]  # fmt: skip
        return len(kinds(run(j, events), "converted"))

    assert converted("2026-03-01T11:00:00Z") == 1
    assert converted("2026-03-01T11:00:00.001Z") == 0


def test_a_disabled_highest_version_takes_no_entrants_and_the_older_version_does_not_take_over(tmp_path: Path) -> None:
    v1 = "id: j\nversion: 1\ntrigger: {event: cart_add}\nsteps: [{send: {channel: email, template: v1}}]\n"
    v2 = v1.replace("version: 1", "version: 2\nenabled: false").replace("v1}", "v2}")
    result = run([journey(v1), journey(v2)], [ev("cart_add", "2026-03-01T10:00:00Z", sku="A", price=1)])
    assert result.actions == [] and [(r["reason"], r["version"]) for r in kinds(result, "not_entered")] == [
        ("disabled", 2)]  # fmt: skip


def test_priority_orders_one_instant_and_never_holds_back_another_run() -> None:
    high = journey("id: high\npriority: 90\ntrigger: {event: cart_add}\nsteps: [{wait: 1h}, "
                   "{send: {channel: email, template: high}}]")  # fmt: skip
    low = journey("id: low\npriority: 10\ntrigger: {event: cart_add}\nsteps: [{send: {channel: email, template: low}}]")
    same = journey("id: same\npriority: 90\ntrigger: {event: cart_add}\nsteps: [{send: {channel: sms, template: s}}]")
    result = run([low, high, same], [ev("cart_add", "2026-03-01T10:00:00Z", sku="A", price=1)])
    # `low` sends at once although `high` is still running; at the same instant `same` (priority 90) goes first.
    assert sends(result) == [("2026-03-01T10:00:00Z", "sms", "s"), ("2026-03-01T10:00:00Z", "email", "low"),
                             ("2026-03-01T11:00:00Z", "email", "high")]  # fmt: skip


def test_validate_refuses_an_if_with_no_branch_and_a_comparison_with_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a\ntrigger: {event: x}\nsteps:\n  - id: check\n"
                                     "    if: {profile.orders: {gte: 1}}\n")  # fmt: skip
    (tmp_path / "b.yaml").write_text("id: b\ntrigger: {event: x, where: {event.channel: {eq: {a: 1}}}}\n"
                                     "steps: [exit]\n")  # fmt: skip
    problems = {Path(p.file).name: p for p in load([tmp_path]).problems}
    assert problems["a.yaml"].line == 4 and "needs then, else or both" in problems["a.yaml"].message
    assert problems["b.yaml"].line == 2 and "not a mapping" in problems["b.yaml"].message
