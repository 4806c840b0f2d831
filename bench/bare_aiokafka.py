"""Pipeline (C) of bench/stream.py: a bare aiokafka consume -> orjson.loads + orjson.dumps -> produce loop.

    python -m bench.bare_aiokafka IN_TOPIC OUT_TOPIC GROUP

Until SIGTERM: `getmany`, for each record orjson.loads the event and orjson.dumps a small dict (its event_id,
customer and sent_at_ns: what the bench matches outputs on), `send` to OUT_TOPIC with the record's key
(acks=all, linger 5 ms). Offsets are auto-committed: at-least-once at best, no transactions, whatever
`--guarantee` bench/stream.py runs with. It is the floor of what a Python consume -> produce loop costs here.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import bootstrap_servers

CHANNEL = "web"


def output_of(raw: bytes) -> bytes:
    """The output record of bench/stream.py's bare pipelines (both of them)."""
    event = orjson.loads(raw)
    return orjson.dumps({"event_id": event["event_id"], "customer_id": event["customer_id"], "channel": CHANNEL,
                         "template": "t", "data": {"sent_at_ns": event["properties"]["sent_at_ns"]}})  # fmt: skip


async def bare_loop(in_topic: str, out_topic: str, group: str) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    consumer = AIOKafkaConsumer(in_topic, bootstrap_servers=bootstrap_servers(), group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(), acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    await producer.send(out_topic, output_of(record.value), key=record.key)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    in_topic, out_topic, group = sys.argv[1:4]
    asyncio.run(bare_loop(in_topic, out_topic, group))
