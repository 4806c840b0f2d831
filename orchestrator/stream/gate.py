"""How the worker stops on a Kafka failure, and the gate that keeps commits and events apart (stream/eos.py)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn

log = logging.getLogger("orchestrator.eos")
EXIT_KAFKA_FAILURE = 75  # EX_TEMPFAIL: restart me


def stop_now(reason: str) -> NoReturn:
    """Exit without any shutdown step: faust's graceful stop commits offsets, including the offset of an event
    that failed half-way (its stream acknowledges events in a `finally`). Open transactions abort by fencing
    or timeout; a supervisor restarts the worker, which reprocesses from the last commit."""
    log.critical("%s; the worker stops (exit %d) and must be restarted", reason, EXIT_KAFKA_FAILURE)
    logging.shutdown()
    os._exit(EXIT_KAFKA_FAILURE)


class Gate:
    """Lets many batches be processed at once, or one commit run alone: never both. A commit also waits until the
    broker has every record the batches before it sent (`confirm_at_commit`)."""

    def __init__(self) -> None:
        self._unconfirmed: list[asyncio.Task[Any]] = []
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()
        self._closing = asyncio.Lock()

    @asynccontextmanager
    async def event(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    @property
    def is_closed(self) -> bool:
        return not self._open.is_set() and not self._busy

    def confirm_at_commit(self, delivery: Coroutine[Any, Any, None]) -> None:
        """A batch's sends, on their way: the next commit waits for them rather than the batch (a batch that waited
        for its acknowledgements would hold its partition for a linger and a round trip)."""
        self._unconfirmed.append(asyncio.ensure_future(delivery))

    async def _confirm(self) -> None:
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        for result in await asyncio.gather(*unconfirmed, return_exceptions=True):
            if isinstance(result, BaseException):  # under exactly_once the transaction must not commit without it
                stop_now(f"a record was not delivered: {result!r}")

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """Wait for the batches in progress to finish and their records to be delivered; hold new ones back until
        the block ends."""
        async with self._closing:
            self._open.clear()
            try:
                await self._idle.wait()
                await self._confirm()
                yield
            finally:
                self._open.set()
