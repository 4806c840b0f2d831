"""`profile.recent.<type>.<duration>`: counts of a customer's events over time, kept bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.contract.conditions import RECENT_MAX_MS, compile_path
from orchestrator.engine.profile import RECENT_LIMIT, remember_recent
from orchestrator.engine.state import new_profile

DAY = 86_400_000


def count(profile: dict, path: str, now: int) -> int:  # type: ignore[type-arg]
    return int(compile_path(path)(({}, {}, profile, now)))


def test_the_window_is_open_at_its_start_and_closed_at_now() -> None:
    profile = new_profile()
    for ts in (0, DAY, 7 * DAY, 8 * DAY):
        remember_recent(profile, "product_view", ts)
    assert count(profile, "profile.recent.product_view.7d", 8 * DAY) == 2  # 1d and 0 are not after 8d - 7d
    assert count(profile, "profile.recent.product_view.7d", 7 * DAY) == 2  # 0 is not after 7d - 7d
    assert count(profile, "profile.recent.product_view.7d", 8 * DAY - 1) == 2  # 8d is after now
    assert count(profile, "profile.recent.cart_add.7d", 8 * DAY) == 0


@given(times=st.lists(st.integers(min_value=0, max_value=200 * DAY), max_size=300),
       seconds=st.integers(min_value=1, max_value=RECENT_MAX_MS // 1000), now_after=st.integers(0, DAY))
def test_counts_are_exact_up_to_the_limit_and_saturate_above(times: list[int], seconds: int, now_after: int) -> None:
    """In any order of arrival; `now` at or after the latest event, as the engine evaluates conditions."""
    profile = new_profile()
    for ts in times:
        remember_recent(profile, "v", ts)
    now = max(times, default=0) + now_after
    true = sum(1 for ts in times if now - seconds * 1000 < ts <= now)
    assert count(profile, f"profile.recent.v.{seconds}s", now) == min(true, RECENT_LIMIT)
    assert len(profile.get("recent", {}).get("v", [])) <= RECENT_LIMIT
