"""The affinity model (`orchestrator.engine.affinity`) against a brute-force recount, and its recommendations.

Logs are small on purpose: baskets of 1-5 of 8 skus, over a few hours of event time (so over several periods),
some purchases replayed (the same basket id again). Under the `KEPT` bound the model must equal an exact recount of
the baskets before each snapshot's version; with a tiny bound (pruning on every fold) it must still not depend on
the order the baskets came in.
"""

from __future__ import annotations

import random
from collections import Counter
from math import sqrt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine.affinity import (
    MIN_SUPPORT,
    NEIGHBOURS,
    PERIOD_MS,
    REMEMBERED_PERIODS,
    Basket,
    Models,
    ModelSnapshot,
    Neighbour,
    Pair,
    boundary,
    fill,
    model_version,
)
from orchestrator.timefmt import parse_rfc3339, to_ms

pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)
BASE = to_ms(parse_rfc3339("2026-03-02T07:20:00Z"))  # mid-period: the first period is a partial one
SKUS = tuple("ABCDEFGH")


@st.composite
def baskets(draw: st.DrawFn, max_size: int = 40) -> list[Basket]:
    """Distinct purchases over about five hours, in no particular order."""
    found = []
    for number in range(draw(st.integers(0, max_size))):
        skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5, unique=True))
        ts = BASE + draw(st.integers(0, 5 * PERIOD_MS))
        found.append(Basket(f"b-{number:03d}", ts, tuple(sorted(skus))))
    return found


@st.composite
def replayed(draw: st.DrawFn) -> tuple[list[Basket], list[Basket]]:
    """A log, and the same log with some baskets in it twice or three times (a replayed purchase), shuffled."""
    log = draw(baskets())
    again = draw(st.lists(st.sampled_from(log), max_size=10)) if log else []
    return log, draw(st.permutations(log + again))


# ------------------------------------------------------------------ the oracle


def recount(log: list[Basket], before: int) -> tuple[int, Counter[str], Counter[tuple[str, str]]]:
    """Baskets, n(sku) and co(a, b) of the distinct baskets with ts < before, counted from scratch."""
    seen: set[str] = set()
    total, n, co = 0, Counter[str](), Counter[tuple[str, str]]()
    for basket in log:
        if basket.id in seen or basket.ts >= before:
            continue
        seen.add(basket.id)
        total += 1
        n.update(basket.skus)
        co.update((a, b) for a in basket.skus for b in basket.skus if a != b)
    return total, n, co


def brute_neighbours(n: Counter[str], co: Counter[tuple[str, str]]) -> dict[str, tuple[Neighbour, ...]]:
    found: dict[str, list[Neighbour]] = {sku: [] for sku in n}
    for (a, b), c in co.items():
        if c >= MIN_SUPPORT:
            found[a].append((b, c, c / sqrt(n[a] * n[b])))
    return {sku: tuple(sorted(items, key=lambda i: (-i[2], i[0]))[:NEIGHBOURS]) for sku, items in found.items()}


def brute_recommend(log: list[Basket], before: int, for_skus: list[str], exclude: list[str], top: int) -> list[Any]:
    total, n, co = recount(log, before)
    if not total or top <= 0:
        return []
    neighbours = brute_neighbours(n, co)
    out = set(for_skus) | set(exclude)
    scores: dict[str, float] = {}
    for sku in sorted(set(for_skus)):
        for other, _, score in neighbours.get(sku, ()):
            if other not in out:
                scores[other] = scores.get(other, 0.0) + score
    ranked = sorted(scores.items(), key=lambda i: (-i[1], i[0]))[:top]
    found = [{"sku": s, "score": round(v, 4), "source": "affinity"} for s, v in ranked]
    for sku in sorted(n, key=lambda s: (-n[s], s)):
        if len(found) < top and sku not in out and sku not in scores:
            found.append({"sku": sku, "score": round(n[sku] / total, 4), "source": "popular"})
    return found


def picture(snapshot: ModelSnapshot) -> tuple[Any, ...]:
    """Everything a snapshot serves, to compare two of them."""
    skus = snapshot.skus()
    carts = [[], *([s] for s in SKUS), list(SKUS[:3]), ["B", "E", "H"]]
    return (snapshot.version, snapshot.baskets, {s: snapshot.count(s) for s in skus},
            {s: snapshot.neighbours(s) for s in skus}, snapshot.pairs(), snapshot.best_sellers(),
            [snapshot.recommend(cart, ["A"], 5) for cart in carts])  # fmt: skip


def boundaries() -> list[int]:
    """Every period start from the first basket's period to the one after the last basket's."""
    return list(range(boundary(BASE), boundary(BASE + 5 * PERIOD_MS) + 2 * PERIOD_MS, PERIOD_MS))


# ------------------------------------------------------------------ properties


@PROPERTY
@given(replayed())
def test_affinities_equal_a_brute_force_recount_at_every_boundary(logs: tuple[list[Basket], list[Basket]]) -> None:
    log, arrivals = logs
    models = Models()
    for basket in arrivals:  # everything known up-front: a snapshot must still hold only what came before it
        models.add(basket)
    snapshots = []
    for edge in boundaries():  # each checked when made (its cached lists carried on to the next), and at the end
        snapshots.append(models.at(edge))
        assert_recounted(snapshots[-1], log)
    for snapshot in snapshots:  # after the later folds: a snapshot never changes
        assert_recounted(snapshot, log)


def assert_recounted(snapshot: ModelSnapshot, log: list[Basket]) -> None:
    total, n, co = recount(log, snapshot.version)
    assert snapshot.baskets == total
    assert {s: snapshot.count(s) for s in snapshot.skus()} == dict(n)
    assert {s: snapshot.neighbours(s) for s in snapshot.skus()} == brute_neighbours(n, co)
    pairs: list[Pair] = sorted(((a, b, c, c / sqrt(n[a] * n[b])) for (a, b), c in co.items()
                                if a < b and c >= MIN_SUPPORT), key=lambda p: (-p[3], p[0], p[1]))  # fmt: skip
    assert snapshot.pairs() == pairs


@PROPERTY
@given(baskets())
def test_a_snapshot_holds_exactly_the_baskets_before_its_version_as_they_arrive(log: list[Basket]) -> None:
    """As `simulate` drives it: baskets in time order, a decision (`at`) before each; the snapshot of a period
    never shows the baskets of that period, even those added before the decision."""
    models = Models()
    for basket in sorted(log, key=lambda b: (b.ts, b.id)):
        snapshot = models.at(basket.ts)
        models.add(basket)
        assert snapshot.version == boundary(basket.ts)
        assert models.at(basket.ts) is snapshot
        assert snapshot.baskets == recount(log, snapshot.version)[0]


@PROPERTY
@given(replayed(), st.randoms(use_true_random=False), st.sampled_from([1, 2, 3, 200]))
def test_the_order_baskets_arrive_in_does_not_matter(
    logs: tuple[list[Basket], list[Basket]], rnd: random.Random, kept: int
) -> None:
    """The same baskets in another order, sealed once or at every boundary, with pruning (`kept` 1-3) or
    without: the same snapshots, the same recommendations."""
    _, arrivals = logs
    at_once, step_by_step = Models(kept), Models(kept)
    for basket in arrivals:
        at_once.add(basket)
    reordered = list(arrivals)
    rnd.shuffle(reordered)
    edges = boundaries()
    for edge in edges:  # a period's baskets added in any order before its seal
        for basket in (b for b in reordered if edge - PERIOD_MS <= b.ts < edge):
            step_by_step.add(basket)
        step_by_step.seal(edge)
    at_once.seal(edges[-1])
    assert picture(at_once.current) == picture(step_by_step.current)
    for snapshot in (at_once.current, step_by_step.current):
        assert all(len(snapshot._co.get(sku, {})) <= kept for sku in SKUS)  # the bound holds
        assert all(snapshot._co[b][a] == c for a, partners in snapshot._co.items() for b, c in partners.items())


@PROPERTY
@given(
    replayed(),
    st.lists(st.sampled_from(SKUS), max_size=4),
    st.lists(st.sampled_from(SKUS), max_size=3),
    st.integers(0, 10),
)
def test_recommend_leaves_out_the_items_and_the_excluded_and_ranks_best_first(
    logs: tuple[list[Basket], list[Basket]], for_skus: list[str], exclude: list[str], top: int
) -> None:
    log, arrivals = logs
    models = Models()
    for basket in arrivals:
        models.add(basket)
    edge = boundaries()[-1]
    found = models.at(edge).recommend(for_skus, exclude, top)
    assert found == brute_recommend(log, edge, for_skus, exclude, top)
    assert len(found) <= top
    assert not {entry["sku"] for entry in found} & (set(for_skus) | set(exclude))
    assert len({entry["sku"] for entry in found}) == len(found)
    sources = [entry["source"] for entry in found]
    assert sources == sorted(sources)  # every affinity before every popular fill
    for source in ("affinity", "popular"):
        scores = [entry["score"] for entry in found if entry["source"] == source]
        assert scores == sorted(scores, reverse=True)
    known = set(models.current.skus()) - set(for_skus) - set(exclude)
    assert len(found) == min(top, len(known))  # best sellers fill up to `top` while there are any
    assert models.at(edge).recommend(list(reversed(for_skus)), set(exclude), top) == found


@PROPERTY
@given(replayed())
def test_a_basket_seen_twice_counts_once(logs: tuple[list[Basket], list[Basket]]) -> None:
    log, arrivals = logs
    once, twice = Models(), Models()
    for basket in log:
        once.add(basket)
    edges = boundaries()
    for basket in arrivals:  # the replays, some after their period was folded
        twice.add(basket)
        twice.seal(edges[len(edges) // 2])
    assert picture(once.at(edges[-1])) == picture(twice.at(edges[-1]))


@PROPERTY
@given(baskets(), st.sampled_from([1, 2, 200]))
def test_changed_names_every_sku_whose_neighbours_changed(log: list[Basket], kept: int) -> None:
    """Against models built afresh at each boundary: a snapshot carries on the cached lists of the skus not
    changed, so a sku missing from `changed()` would serve (and the worker keep in Redis) a stale list."""
    models = Models(kept)
    for basket in log:
        models.add(basket)
    before = models.current
    models.changed()
    for edge in boundaries():
        after = models.at(edge)
        changed = models.changed()
        fresh = Models(kept)
        for basket in log:
            fresh.add(basket)
        rebuilt = fresh.at(edge)
        assert {s for s in SKUS if before.neighbours(s) != rebuilt.neighbours(s)} <= changed
        assert [after.neighbours(s) for s in SKUS] == [rebuilt.neighbours(s) for s in SKUS]
        assert not models.changed()  # taken
        before = after


# ------------------------------------------------------------------ examples


def model_of(*baskets: tuple[str, ...], ts: int = BASE) -> ModelSnapshot:
    models = Models()
    for number, skus in enumerate(baskets):
        models.add(Basket(f"b-{number}", ts, tuple(sorted(skus))))
    return models.at(ts + PERIOD_MS)


def test_cosine_does_not_let_the_best_seller_top_every_list() -> None:
    # BAG is in every basket; SNK and SOCK are bought together and rarely otherwise.
    snapshot = model_of(("BAG", "SNK", "SOCK"), ("BAG", "SNK", "SOCK"), ("BAG", "TEE"), ("BAG", "CAP"), ("BAG",),
                        ("BAG", "TEE"), ("BAG", "CAP"))  # fmt: skip
    assert [entry["sku"] for entry in snapshot.recommend(["SNK"], (), 1)] == ["SOCK"]
    assert snapshot.neighbours("SNK")[0][0] == "SOCK" and snapshot.neighbours("SNK")[0][2] == pytest.approx(1.0)
    assert snapshot.neighbours("SNK")[1][0] == "BAG"  # co 2 of 7 baskets: cosine 2 / sqrt(2 * 7)


def test_one_coincidence_is_not_a_pattern() -> None:
    snapshot = model_of(("RARE-1", "RARE-2"), ("TEE",), ("TEE",))
    assert snapshot.neighbours("RARE-1") == ()
    found = snapshot.recommend(["RARE-1"], (), 3)
    assert found == [{"sku": "TEE", "score": round(2 / 3, 4), "source": "popular"},
                     {"sku": "RARE-2", "score": round(1 / 3, 4), "source": "popular"}]  # fmt: skip


def test_an_empty_model_recommends_nothing() -> None:
    assert Models().at(BASE).recommend(["A"], (), 10) == []
    assert model_of(("A", "B"), ("A", "B")).recommend(["A"], (), 0) == []


def test_sealing_an_earlier_boundary_is_a_no_op_and_later_ones_keep_the_caches() -> None:
    models = Models()
    models.add(Basket("b-1", BASE, ("A", "B")))
    models.add(Basket("b-2", BASE, ("A", "B")))
    snapshot = models.at(BASE + PERIOD_MS)
    models.seal(BASE)
    assert models.current is snapshot
    later = models.at(BASE + 5 * PERIOD_MS)
    assert later.version == boundary(BASE + 5 * PERIOD_MS) and later.neighbours("A") == snapshot.neighbours("A")


def test_a_basket_older_than_the_remembered_periods_is_dropped() -> None:
    models = Models()
    models.seal(boundary(BASE) + (REMEMBERED_PERIODS + 1) * PERIOD_MS)
    models.add(Basket("b-1", BASE, ("A", "B")))
    models.add(Basket("b-2", BASE + REMEMBERED_PERIODS * PERIOD_MS, ("A", "B")))
    assert models.late == 1
    assert models.at(BASE + 100 * PERIOD_MS).baskets == 1


def test_lists_are_what_redis_serves_and_fill_completes_them() -> None:
    snapshot = model_of(("A", "B"), ("A", "B"), ("A", "C"), ("A", "C"), ("D",))
    lists = snapshot.lists(["A", "D", "Z"])
    assert lists == {"A": [{"sku": "B", "score": round(2 / sqrt(8), 4)}, {"sku": "C", "score": round(2 / sqrt(8), 4)}],
                     "D": [], "Z": []}  # fmt: skip
    ranked = [{**entry, "source": "affinity"} for entry in lists["A"]]
    assert fill(ranked, snapshot.best_sellers(), {"A"}, 4) == snapshot.recommend(["A"], (), 4)


def test_model_version_is_rfc3339() -> None:
    assert model_version(to_ms(parse_rfc3339("2026-03-01T10:00:00Z"))) == "2026-03-01T10:00:00Z"
    assert boundary(to_ms(parse_rfc3339("2026-03-01T10:59:59.999Z"))) == to_ms(parse_rfc3339("2026-03-01T10:00:00Z"))
