"""The identity history in Redis, shared by every worker: the facts (engine/history.py), and how far each input
partition is ingested (the claims the global input watermark is the minimum of).

- `{p}facts:<key>`: sorted set of the facts listed under `key` (an identifier, or `customer:<id>`), score = event
  time (ms), member = the fact's JSON. Written when a record is read, before any claim covers it; a record read
  twice writes the same member.
- `{p}ingest:<topic>`: hash, input partition -> `<claim>:<written at>:<position>`: every record of that partition
  with an earlier event time has its facts written (or is late); `written at` is the wall clock of the claim (ms);
  every record before offset `position` has its facts written (what a late record waits for). The watermark
  is the least claim, once every partition has one; it speaks for the records read before its oldest claim.

Reads and writes are pipelined: a batch's facts in one round trip, a batch's gathering in one per step of its
connected identifiers (usually two), the claims in one a tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.engine.history import AsOf, Fact, erasure, through
from orchestrator.serving.connect import RedisClient
from orchestrator.serving.redis import retrying


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class History:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _facts(self, key: str) -> str:
        return f"{self.prefix}facts:{key}"

    def _claims(self, topic: str) -> str:
        return f"{self.prefix}ingest:{topic}"

    async def add(self, facts: Sequence[Fact]) -> None:
        """The facts, under each of their keys, in one round trip."""
        if not facts:
            return
        members: dict[str, dict[bytes, int]] = {}
        for fact in facts:
            for key in fact.keys():  # noqa: SIM118 (a Fact is no mapping)
                members.setdefault(key, {})[fact.encode()] = fact.ts

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for key, mine in members.items():
                pipe.zadd(self._facts(key), mine)
            await pipe.execute()

        await retrying("identity history write", write)

    async def gather(self, gatherings: Sequence[AsOf]) -> None:
        """Complete every gathering: the keys any still misses, read in one round trip a step."""
        while True:
            wanted: dict[str, int] = {}  # key -> the latest time any gathering needs of it
            for gathering in gatherings:
                for key in gathering.missing():
                    wanted[key] = max(wanted.get(key, gathering.order[0]), gathering.order[0])
            if not wanted:
                return
            keys = sorted(wanted)
            found = await self._read(keys, wanted)
            for gathering in gatherings:
                for key in gathering.missing():
                    gathering.add(key, found[key])

    async def _read(self, keys: list[str], until: Mapping[str, int]) -> dict[str, list[Fact]]:
        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.zrangebyscore(self._facts(key), "-inf", until[key], withscores=True)
            return list(await pipe.execute())

        replies = await retrying("identity history read", read)
        return {key: [Fact.decode(raw, int(ts)) for raw, ts in reply] for key, reply in zip(keys, replies, strict=True)}

    async def purge(self, forget: Fact) -> None:
        """Right to erasure: the history up to a forget, connected to it, becomes one snapshot that no longer names
        its customer or the identifiers it owned (engine/history.py `erasure`); later resolution is unchanged."""
        gathering = AsOf(through(forget.order), forget.keys())
        await self.gather([gathering])
        if not gathering.facts:
            return
        snapshot = erasure(gathering.facts, forget.order)

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for fact in gathering.facts:
                for key in fact.keys():  # noqa: SIM118 (a Fact is no mapping)
                    pipe.zrem(self._facts(key), fact.encode())
            if snapshot is not None:
                for key in snapshot.keys():  # noqa: SIM118
                    pipe.zadd(self._facts(key), {snapshot.encode(): snapshot.ts})
            await pipe.execute()

        await retrying("identity history erasure", write)

    async def claim(
        self, topic: str, claims: Mapping[int, tuple[int, int]], now: int, partitions: int
    ) -> tuple[tuple[int, int] | None, dict[int, int]]:
        """Write this worker's claims (made at `now`) with how far it has read each partition. Returns the input
        watermark (the least claim of all `partitions`) and when its oldest claim was made, None while a partition
        has no claim; and every partition's position."""

        async def exchange() -> Any:
            pipe = self.redis.pipeline(transaction=False)
            if claims:
                pipe.hset(self._claims(topic), mapping={str(p): f"{c}:{now}:{at}" for p, (c, at) in claims.items()})
            pipe.hgetall(self._claims(topic))
            return (await pipe.execute())[-1]

        every, positions = {}, {}
        for partition, value in (await retrying("ingest claims", exchange)).items():
            claim, written, *position = _text(value).split(":")
            every[int(_text(partition))] = (int(claim), int(written))
            positions[int(_text(partition))] = int(position[0]) if position else -1
        if any(p not in every for p in range(partitions)):
            return None, positions
        return (min(every[p][0] for p in range(partitions)), min(every[p][1] for p in range(partitions))), positions
