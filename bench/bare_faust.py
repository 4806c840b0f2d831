"""Pipeline (B) of bench/stream.py: a bare faust-streaming app, one agent, raw bytes in -> orjson -> out.

    python -m bench.bare_faust IN_TOPIC OUT_TOPIC APP_ID [--guarantee exactly_once|at_least_once]
                               [--commit-interval 0.25]

One agent on IN_TOPIC (raw bytes, 4 partitions made by the bench) takes `stream.take_events(500, within=0.01)`
batches (up to 500 events, or what arrived within 10 ms), and for each event orjson.loads it, orjson.dumps the
small output dict bench/stream.py matches on (bench/bare_aiokafka.py's `output_of`) and sends it to OUT_TOPIC
with the event's key; the batch's sends are gathered (one wait for all their acks) before the next batch, so the
events are acknowledged only once their outputs are. That is the batching /work/shared/KAFKA-FAUST-NOTES.md
measured at about 6,000 events/s exactly_once.

The faust settings are the orchestrator worker's (orchestrator/stream/topology.py `new_app`): the same
`processing_guarantee` (exactly_once unless told), commit interval (ORCH_COMMIT_INTERVAL, 0.25 s), producer linger
(5 ms), max poll records (500), stream buffer (1024), raw serializers, no web server, no terminal spinner, the
worker's GC thresholds.

Under exactly_once the sends go through the transactional producer of the event's *source* partition
(`{app id}-{group}-{partition}`, faust's own naming), so an output becomes visible with the transaction that
commits its input's offset, as the orchestrator's actions do. faust 0.15.3's `Topic.send` would pick the producer
by the destination's partition and, for a topic the app does not consume, send outside any transaction
(orchestrator/stream/eos.py, point 1): outputs visible at once, and nothing like the guarantee. None of the other
fixes of eos.py are here (a commit may still split a batch; that only matters on a crash or a rebalance): this is
faust's own cost, not a safe pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP
from faust.worker import Worker

from bench.bare_aiokafka import output_of
from bench.common import GUARANTEES, PARTITIONS, bootstrap_servers
from orchestrator.process import tune_gc

BATCH, WITHIN = 500, 0.01


def create_app(in_name: str, out_name: str, app_id: str, guarantee: str, commit_interval: float) -> faust.App:
    app = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap_servers().split(",")],
        store="memory://",
        topic_partitions=PARTITIONS,
        processing_guarantee=guarantee,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=500,
        stream_buffer_maxsize=1024,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=0.005,
        broker_commit_interval=commit_interval,
    )
    source = app.topic(in_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    transactional = guarantee == "exactly_once"

    def transactional_id(tp: TP) -> str | None:
        return f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}" if transactional else None

    async def forward(stream: Any) -> None:
        producer = app.producer
        async for events in stream.take_events(BATCH, within=WITHIN):
            acks = []
            for event in events:
                message = event.message
                acks.append(await producer.send(out_name, message.key, output_of(event.value), None, None, None,
                                                transactional_id=transactional_id(message.tp)))  # fmt: skip
            await asyncio.gather(*acks)

    app.agent(source, name="forward")(forward)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_faust", description=__doc__.split("\n\n")[0])
    parser.add_argument("in_topic")
    parser.add_argument("out_topic")
    parser.add_argument("app_id")
    parser.add_argument("--guarantee", choices=GUARANTEES, default="exactly_once")
    parser.add_argument("--commit-interval", type=float, default=0.25)
    args = parser.parse_args(argv)
    tune_gc()
    app = create_app(args.in_topic, args.out_topic, args.app_id, args.guarantee, args.commit_interval)
    worker = Worker(app, loglevel="warning", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
