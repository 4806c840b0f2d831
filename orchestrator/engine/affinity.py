"""Complementary products learned from baskets: item-to-item affinities, as snapshots at event-time boundaries.

- `Basket`: what one purchase teaches the model (no personal data: `id` is a hash).
- `Models.add(basket)`: a basket, in any order; it waits in its period (`PERIOD_MS` of event time).
- `Models.seal(until)`: fold every waiting basket with `ts < until`, period by period in period order, each
  period's baskets sorted by id (so the result does not depend on the order they were added in); the
  snapshot version becomes `until` (a period boundary).
- `Models.at(now)`: the snapshot a decision at `now` uses: seal(boundary(now)) then the current snapshot.
  `simulate` calls this; the worker seals on its own schedule, reads `Models.current` and writes `changed()`.
- `Snapshot.recommend(for_skus, exclude, top)`: up to `top` of `{"sku", "score", "source"}`, best first.

Why cosine with a minimum support: the raw co-count `co(a, b)` (baskets holding both) ranks the best sellers first
for every item, since they are in most baskets anyway. Cosine, `co(a, b) / sqrt(n(a) * n(b))`, divides by how
often each item sells, so a pair scores high when the two are bought *together* more than their sales explain. But
on rare items cosine is noisy: two items sold once, in the same basket, score 1.0. A pair counts only from
`MIN_SUPPORT` shared baskets on: one coincidence is not a pattern.

Memory is bounded: after each period's fold every item keeps at most its `KEPT` partners of highest co-count (a
pair one side drops is dropped on both, so each pair has one count), and basket ids are remembered for
`REMEMBERED_PERIODS` periods. Pruning happens at the same period boundaries in every runtime, so every runtime
learns the same model from the same baskets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from math import sqrt
from typing import Any, Protocol

from orchestrator.timefmt import format_ms

PERIOD_MS = 3_600_000  # a new snapshot for each hour of event time
MIN_SUPPORT = 2  # shared baskets before a pair counts
KEPT = 200  # co-count partners kept per item after each period's fold
NEIGHBOURS = 50  # neighbours served per item (the most a `recommend` may ask for)
REMEMBERED_PERIODS = 48  # basket ids remembered this many periods back (2 days); older baskets are dropped

Neighbour = tuple[str, int, float]  # partner sku, co-count, cosine score
Pair = tuple[str, str, int, float]  # sku a < sku b, co-count, cosine score


def boundary(now: int) -> int:
    """The start of the period `now` falls in: the version of the snapshot a decision at `now` uses."""
    return now - now % PERIOD_MS


def model_version(version_ms: int) -> str:
    """A snapshot's version as RFC 3339 UTC, e.g. `2026-03-01T10:00:00Z` (what Redis and the API carry)."""
    return format_ms(version_ms)


@dataclass(frozen=True, slots=True)
class Basket:
    id: str  # a hash of customer key and event id: sorts the period's baskets, drops a basket seen twice
    ts: int  # the purchase's event time (epoch ms)
    skus: tuple[str, ...]  # distinct, sorted


class Snapshot(Protocol):
    version: int  # epoch ms: learned from the baskets before this instant

    def recommend(self, for_skus: Sequence[str], exclude: Collection[str], top: int) -> list[dict[str, Any]]: ...


class ModelSource(Protocol):
    def at(self, now: int) -> Snapshot: ...


def fill(
    ranked: Iterable[dict[str, Any]], popular: Iterable[dict[str, Any]], leave_out: Collection[str], top: int
) -> list[dict[str, Any]]:
    """Up to `top` of `ranked` (best first), then best sellers not listed nor left out: the one rule both
    `ModelSnapshot.recommend` and the API (from the lists in Redis) answer with."""
    found: list[dict[str, Any]] = []
    listed = set(leave_out)
    for source in (ranked, popular):
        for entry in source:
            if len(found) >= top:
                return found
            if entry["sku"] not in listed:
                listed.add(entry["sku"])
                found.append(entry)
    return found


class ModelSnapshot:
    """What the model knew at `version`: never changes once made (`Models` copies what a fold would touch).
    Neighbour lists and the best sellers are computed on first use and cached, so a `recommend` costs its
    items' neighbours, not the catalogue."""

    __slots__ = ("_co", "_n", "_neighbours", "_popular", "baskets", "version")

    def __init__(
        self, version: int, baskets: int, n: dict[str, int], co: dict[str, dict[str, int]],
        neighbours: dict[str, tuple[Neighbour, ...]] | None = None,
    ) -> None:  # fmt: skip
        self.version = version
        self.baskets = baskets  # baskets learned from (those with at least one sku)
        self._n = n
        self._co = co
        self._neighbours: dict[str, tuple[Neighbour, ...]] = {} if neighbours is None else neighbours
        self._popular: tuple[str, ...] | None = None

    def moved(self, version: int) -> ModelSnapshot:
        """The same model at a later version (no basket in between), sharing the caches."""
        later = ModelSnapshot(version, self.baskets, self._n, self._co, self._neighbours)
        later._popular = self._popular
        return later

    def count(self, sku: str) -> int:
        """n(sku): the baskets that held it (0: unknown)."""
        return self._n.get(sku, 0)

    def skus(self) -> list[str]:
        return sorted(self._n)

    def neighbours(self, sku: str) -> tuple[Neighbour, ...]:
        """The top `NEIGHBOURS` partners with at least `MIN_SUPPORT` shared baskets: score desc, then sku."""
        found = self._neighbours.get(sku)
        if found is None:
            n = self._n.get(sku, 0)
            scored = [(other, c, c / sqrt(n * self._n[other])) for other, c in self._co.get(sku, {}).items()
                      if c >= MIN_SUPPORT]  # fmt: skip
            scored.sort(key=lambda item: (-item[2], item[0]))
            found = self._neighbours[sku] = tuple(scored[:NEIGHBOURS])
        return found

    def popular(self) -> tuple[str, ...]:
        """Every sku, best sellers first (n desc, then sku): sorted once per snapshot."""
        if self._popular is None:
            self._popular = tuple(sorted(self._n, key=lambda sku: (-self._n[sku], sku)))
        return self._popular

    def best_sellers(self, limit: int | None = None) -> list[dict[str, Any]]:
        """`{"sku", "score": n / baskets, "source": "popular"}`, best first."""
        return [{"sku": sku, "score": round(self._n[sku] / self.baskets, 4), "source": "popular"}
                for sku in self.popular()[:limit]]  # fmt: skip

    def recommend(self, for_skus: Sequence[str], exclude: Collection[str], top: int) -> list[dict[str, Any]]:
        """Candidates scored by the sum of their scores as neighbours of the `for_skus` (each counted once), best
        first (ties: sku); none of the `for_skus` nor of `exclude`; filled up with best sellers."""
        if top <= 0 or not self.baskets:
            return []
        given = sorted(set(for_skus))  # a fixed order of addition: the same floats whatever order came in
        leave_out = {*given, *exclude}
        scores: dict[str, float] = {}
        for sku in given:
            for other, _, score in self.neighbours(sku):
                if other not in leave_out:
                    scores[other] = scores.get(other, 0.0) + score
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:top]
        affinity = [{"sku": sku, "score": round(score, 4), "source": "affinity"} for sku, score in ranked]
        if len(affinity) == top:
            return affinity
        popular = ({"sku": sku, "score": round(self._n[sku] / self.baskets, 4), "source": "popular"}
                   for sku in self.popular())  # fmt: skip
        return fill(affinity, popular, leave_out, top)

    def pairs(self, top: int | None = None) -> list[Pair]:
        """The pairs with at least `MIN_SUPPORT` shared baskets, best score first (ties: a, then b)."""
        found = [(a, b, c, c / sqrt(self._n[a] * self._n[b])) for a, partners in self._co.items()
                 for b, c in partners.items() if a < b and c >= MIN_SUPPORT]  # fmt: skip
        found.sort(key=lambda pair: (-pair[3], pair[0], pair[1]))
        return found[:top]

    def lists(self, skus: Iterable[str], limit: int = NEIGHBOURS) -> dict[str, list[dict[str, Any]]]:
        """Each sku's neighbours as served: `[{"sku", "score"}]`, best first (empty: none any more)."""
        return {sku: [{"sku": other, "score": round(score, 4)} for other, _, score in self.neighbours(sku)[:limit]]
                for sku in skus}  # fmt: skip


class Models:
    """Baskets waiting in their periods, and the model folded from every period before `version`.

    Duplicates: a basket whose id was already added or folded in its period is dropped (a replayed purchase has the
    same time, so the same period). Ids are remembered for `REMEMBERED_PERIODS` periods before the version; a basket
    older than that is dropped too (`late`), since whether it was seen can no longer be told."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self.late = 0  # baskets dropped as older than the remembered periods
        self._waiting: dict[int, dict[str, Basket]] = {}  # period -> id -> basket
        self._folded: dict[int, set[str]] = {}  # period -> ids folded (the remembered periods only)
        self._changed: set[str] = set()
        self._current = ModelSnapshot(0, 0, {}, {})

    @property
    def current(self) -> ModelSnapshot:
        return self._current

    @property
    def version(self) -> int:
        return self._current.version

    def _horizon(self, version: int) -> int:
        return boundary(version) - REMEMBERED_PERIODS * PERIOD_MS

    def add(self, basket: Basket) -> None:
        period = boundary(basket.ts)
        if period < self._horizon(self.version):
            self.late += 1
            return
        waiting = self._waiting.setdefault(period, {})
        if basket.id not in waiting and basket.id not in self._folded.get(period, ()):
            waiting[basket.id] = basket

    def at(self, now: int) -> ModelSnapshot:
        self.seal(boundary(now))
        return self._current

    def changed(self) -> set[str]:
        """The skus whose neighbour list may differ from what the previous call returned for: since then, their
        own counts changed or those of a partner. Taken: the next call starts empty."""
        found, self._changed = self._changed, set()
        return found

    def seal(self, until: int) -> None:
        """Fold the baskets before `until` and make `until` the version; a no-op when `until` is not later."""
        old = self._current
        if until <= old.version:
            return
        periods = sorted(p for p in self._waiting if p < until)
        if not periods:
            self._current = old.moved(until)
            self._forget(until)
            return
        fold = _Fold(old, self.kept)
        for period in periods:
            waiting = self._waiting[period]
            ready = sorted(i for i, basket in waiting.items() if basket.ts < until)
            fold.period([waiting.pop(i) for i in ready])
            self._folded.setdefault(period, set()).update(ready)
            if not waiting:
                del self._waiting[period]
        self._changed |= fold.changed
        kept = {sku: found for sku, found in old._neighbours.items() if sku not in fold.changed}
        self._current = ModelSnapshot(until, fold.baskets, fold.n, fold.co, kept)
        self._forget(until)

    def _forget(self, version: int) -> None:
        horizon = self._horizon(version)
        for period in [p for p in self._folded if p < horizon]:
            del self._folded[period]


class _Fold:
    """One seal's work on copies: the counts (shallow) and each partner table it changes (copy on write), so the
    snapshots already handed out keep their own."""

    def __init__(self, base: ModelSnapshot, kept: int) -> None:
        self.kept = kept
        self.baskets = base.baskets
        self.n = dict(base._n)
        self.co = dict(base._co)
        self.changed: set[str] = set()
        self._own: set[str] = set()

    def _partners(self, sku: str) -> dict[str, int]:
        if sku not in self._own:
            self._own.add(sku)
            self.co[sku] = dict(self.co.get(sku, {}))
        return self.co[sku]

    def period(self, baskets: list[Basket]) -> None:
        """Count one period's baskets (sorted by id), then prune every item it touched to its `kept` partners."""
        touched: set[str] = set()
        n = self.n
        for basket in baskets:
            skus = sorted(set(basket.skus))
            if not skus:
                continue
            self.baskets += 1
            touched.update(skus)
            for sku in skus:
                n[sku] = n.get(sku, 0) + 1
                partners = self._partners(sku)
                for other in skus:
                    if other != sku:
                        partners[other] = partners.get(other, 0) + 1
        self.changed |= touched
        for sku in touched:
            self.changed.update(self.co.get(sku, ()))
        for sku in sorted(touched):
            partners = self.co.get(sku, {})
            if len(partners) > self.kept:
                ranked = sorted(partners.items(), key=lambda item: (-item[1], item[0]))
                for other, _ in ranked[self.kept :]:
                    del self._partners(sku)[other]
                    del self._partners(other)[sku]
