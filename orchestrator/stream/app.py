"""The Faust app: the topology (stream/topology.py), the agents and the loops wired to one shared `Shell`.

Data flow:  touchpoints --ingest--> <app>.customers --customer agent--> actions.<channel>, journeys.audit
                  |   \\--(one hop: same partition number)--^   ^ watermark marks (every customers partition)
                  \\--(bad input)--> touchpoints.dlq

ingest: stream/ingest.py; the customer agent: stream/customer.py (the per-customer step, engine/step.py, in a
thin I/O shell); event-time order: stream/watermark.py and stream/holding.py; the loops: stream/loops.py;
exactly-once: stream/eos.py; metrics: stream/metrics.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from orchestrator.engine import Engine
from orchestrator.serving.connect import connect_redis
from orchestrator.serving.history import History
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import Serving
from orchestrator.settings import Settings
from orchestrator.stream import customer, ingest, loops
from orchestrator.stream.batching import Staged, Tables
from orchestrator.stream.eos import OrchestratorApp
from orchestrator.stream.holding import Holding
from orchestrator.stream.intake import Intake
from orchestrator.stream.learning import Learning, follow
from orchestrator.stream.metrics import Metrics
from orchestrator.stream.parking import Parking
from orchestrator.stream.shell import Shell
from orchestrator.stream.states import States
from orchestrator.stream.timers import TimerIndex
from orchestrator.stream.topology import Partitions, declare, new_app
from orchestrator.stream.watermark import IngestProgress, Watermarks


def create_app(settings: Settings, engine: Engine, partitions: Partitions) -> OrchestratorApp:
    """Build the app for these settings, this engine and the topics' partitions; nothing is read from globals."""
    app = new_app(settings)
    topology = declare(app, settings, engine.channels)
    raw = (topology.customer_table, topology.timer_table, topology.parked_table, topology.kpi_table,
           topology.held_table)  # fmt: skip
    tables = Tables(*(Staged(table) for table in raw))
    index, holding = TimerIndex(), Holding(tables.held)
    metrics = app.metrics = Metrics()
    metrics.track_timers(lambda: len(index))
    intake = Intake(int(settings.max_lateness * 1000))
    app.on_seek.append(intake.clear)
    metrics.held.set_function(lambda: len(holding) + len(intake))
    redis = connect_redis(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    shell = Shell(
        app=app,
        settings=settings,
        engine=engine,
        topology=topology,
        serving=Serving(redis, Keys(settings.redis_prefix)),
        metrics=metrics,
        index=index,
        partitions=partitions,
        history=History(redis, settings.redis_prefix),
        intake=intake,
        releasing={},
        progress=IngestProgress(app, settings.topic_touchpoints, partitions.touchpoints),
        watermarks=Watermarks(),
        holding=holding,
        states=States(),
        parking=Parking(tables.parked),
        learning=Learning(partitions.customers, engine.recommends),
        tables=tables,
        handed=Staged(topology.held_table),
        identity_secret=settings.identity_secret.get_secret_value().encode(),
    )  # fmt: skip

    def bound(fun: Callable[[Shell, faust.StreamT[bytes]], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: faust.StreamT[bytes]) -> None:
            await fun(shell, stream)

        return agent

    app.agent(topology.touchpoints, name="ingest")(bound(ingest.run))
    app.agent(topology.customers, name="customer")(bound(customer.run))
    lag = loops.LagMeter(shell)

    async def rebuild_index() -> None:
        await loops.rebuild_index(shell)

    async def announce_journeys() -> None:
        await loops.announce_journeys(shell)

    async def rebuild_holding() -> None:
        await loops.rebuild_holding(shell)

    sweeping: list[asyncio.Task[None]] = []

    async def sweep() -> None:
        """Beside the agents (recovery does not wait for it); a rebalance starts it again."""
        for task in sweeping:
            task.cancel()
        sweeping[:] = [asyncio.create_task(loops.sweep(shell))]
        sweeping[0].add_done_callback(loops.log_failure)

    async def send_marks() -> None:
        await loops.send_marks(shell)

    async def learn() -> None:
        if shell.learning.active:
            await follow(settings.kafka_bootstrap_servers, settings.topic_baskets, shell.learning,
                         lambda: loops.publish_model(shell))  # fmt: skip

    topology.timer_table.on_recover(rebuild_index)
    topology.held_table.on_recover(rebuild_holding)
    topology.customer_table.on_recover(sweep)
    app.task(announce_journeys)
    app.task(learn)
    app.timer(interval=loops.LAG_INTERVAL)(lag.measure)
    app.timer(interval=settings.timer_interval)(send_marks)
    return app
