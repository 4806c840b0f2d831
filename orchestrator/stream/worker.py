"""`orchestrator worker`: prepare topics and the journey archive, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import logging
import shutil

from faust.worker import Worker

from orchestrator.contract.loader import Loaded
from orchestrator.engine import Engine
from orchestrator.settings import Settings
from orchestrator.stream.admin import ensure_topics, sync_archive
from orchestrator.stream.app import create_app
from orchestrator.stream.client import partitions_of
from orchestrator.stream.topology import Partitions


async def prepare(settings: Settings, loaded: Loaded) -> tuple[Engine, Partitions]:
    """Topics first, then the archive: the engine keeps every version that runs in flight may be on."""
    secret = settings.coupon_secret.get_secret_value().encode()

    await ensure_topics(settings, Engine.of(loaded).channels)
    archived = await sync_archive(settings, loaded.journeys, loaded.sources)
    engine = Engine.of(loaded, retired=archived.retired, secret=secret, deployed=archived.deployed)
    await ensure_topics(settings, engine.channels)
    bootstrap = settings.kafka_bootstrap_servers
    partitions = Partitions(len(await partitions_of(bootstrap, settings.topic_touchpoints)),
                            len(await partitions_of(bootstrap, settings.topic_customers)))  # fmt: skip
    return engine, partitions


def run_worker(settings: Settings, loaded: Loaded) -> None:
    """Blocks until the worker stops (SIGINT or SIGTERM)."""
    engine, partitions = asyncio.run(prepare(settings, loaded))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, engine, partitions)
    if settings.processing_guarantee == "exactly_once":
        # Local stores hold writes of transactions that a crash aborted, and faust cannot tell them apart:
        # rebuild the tables from their changelogs (read_committed). Recovery time grows with the state.
        shutil.rmtree(app.conf.tabledir, ignore_errors=True)
    app.metrics.serve(settings.metrics_host, settings.metrics_port)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG at level WARNING and above, so every debug
    # call in faust and aiokafka builds a record (about 7 % of the worker's CPU): no spinner.
    worker.spinner = None
    # The mark loop's tick also releases every owned input partition's records: under load it outlasts its
    # interval (the next tick then starts at once), and mode would log a warning for each such tick, many a second.
    # How far behind the worker is shows in orchestrator_watermark_delay_seconds and orchestrator_consumer_lag.
    logging.getLogger("mode.timers").setLevel(logging.ERROR)
    worker.execute_from_commandline()
