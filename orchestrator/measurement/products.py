"""`orchestrator affinities`: the complementary products an event log teaches, as tables in the terminal.

The model is the one `simulate` learns (engine/affinity.py) from the baskets of the log's purchases, sealed after
the last event: what a recommendation would use once every basket of the log is folded.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.contract.events import Event
from orchestrator.engine import Engine
from orchestrator.engine.affinity import MIN_SUPPORT, NEIGHBOURS, PERIOD_MS, ModelSnapshot, boundary, model_version
from orchestrator.simulate import Simulator

WHY = f"score: cosine of the baskets bought together, pairs in at least {MIN_SUPPORT} baskets"


def learn(engine: Engine, events: Sequence[Event], identity_secret: bytes) -> ModelSnapshot:
    """Replay the log as `simulate` does and fold every basket it made (sealed at the hour after the last event)."""
    simulator = Simulator(engine, identity_secret=identity_secret)
    simulator.run(events)
    last = max((event.ts for event in events), default=0)
    simulator.models.seal(boundary(last) + PERIOD_MS)
    return simulator.models.current


def _caption(snapshot: ModelSnapshot) -> str:
    return (f"Learned from {snapshot.baskets} basket(s) of {len(snapshot.skus())} item(s) bought before "
            f"{model_version(snapshot.version)}; {WHY}")  # fmt: skip


def pairs_table(snapshot: ModelSnapshot, top: int) -> Table:
    """The `top` pairs of items most bought together, best score first."""
    table = Table(title="Items bought together", title_justify="left")
    for column in ("item", "with", "baskets together", "score"):
        table.add_column(column, justify="right" if column in ("baskets together", "score") else "left")
    for a, b, co, score in snapshot.pairs(top):
        table.add_row(Text(a), Text(b), str(co), f"{score:.4f}")  # Text: a sku is never read as markup
    return table


def neighbours_table(snapshot: ModelSnapshot, sku: str, top: int) -> Table:
    """What `sku` is bought with, best score first (the list `recommend` starts from)."""
    table = Table(title=Text(f"Bought with {sku} (in {snapshot.count(sku)} basket(s))"), title_justify="left")
    for column in ("item", "baskets together", "score"):
        table.add_column(column, justify="left" if column == "item" else "right")
    for other, co, score in snapshot.neighbours(sku)[: min(top, NEIGHBOURS)]:
        table.add_row(Text(other), str(co), f"{score:.4f}")
    return table


def print_affinities(snapshot: ModelSnapshot, sku: str | None, top: int, console: Console | None = None) -> str | None:
    """Print the table; the problem in words instead (nothing printed) when `sku` is not in any basket."""
    if sku is not None and not snapshot.count(sku):
        return f"item {sku!r} is in none of the {snapshot.baskets} basket(s) of the log"
    out = console or Console()
    table = pairs_table(snapshot, top) if sku is None else neighbours_table(snapshot, sku, top)
    out.print(table)
    if not table.row_count:
        what = "no pair of items" if sku is None else f"{sku} is in no pair that"
        out.print(f"{what} is in {MIN_SUPPORT} or more baskets yet: recommendations are best sellers", markup=False)
    out.print(_caption(snapshot), markup=False)
    return None
