"""`GET /v1/products/{sku}/complementary`: products to offer with an item, from the model the worker wrote to Redis.

The worker writes each model version's neighbour lists and best sellers (`Serving.write_model`); the answer is the
item's neighbours, then best sellers to fill up to `top`, by the same rule as the engine's `recommend`
(`engine.affinity.fill`), so a store sees what a journey would send.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from orchestrator.engine.affinity import fill
from orchestrator.serving.connect import RedisClient
from orchestrator.serving.keys import Keys
from orchestrator.serving.redis import read_model
from orchestrator.serving.schemas import Complementary, RecommendedProduct

DEFAULT_TOP = 10
MAX_TOP = 50
TOP_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": DEFAULT_TOP}
_WHOLE = re.compile(r"[0-9]{1,4}")


def top_of(text: str | None) -> int:
    """`?top=`: a whole number from 1 to `MAX_TOP`, `DEFAULT_TOP` when absent. ValueError says what is wrong."""
    if text is None:
        return DEFAULT_TOP
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_TOP:
        raise ValueError(f"top must be a whole number from 1 to {MAX_TOP}")
    return int(text)


def _entries(raw: bytes | str | None, source: str) -> list[dict[str, Any]]:
    """A stored list, each entry checked (a corrupt value is an internal error, never served half-read)."""
    loaded = [] if raw is None else orjson.loads(raw)
    if not isinstance(loaded, list):
        raise ValueError("a stored model list is not a JSON list")
    return [RecommendedProduct.model_validate({"sku": e["sku"], "score": e["score"], "source": source}).model_dump()
            for e in loaded]  # fmt: skip


async def complementary(redis: RedisClient, keys: Keys, sku: str, top: int) -> Complementary | None:
    """The answer for `sku`; None when no model was ever written. An item the model does not know gets best
    sellers only."""
    version, neighbours, popular = await read_model(redis, keys, sku)
    if version is None:
        return None
    found = fill(_entries(neighbours, "affinity"), _entries(popular, "popular"), {sku}, top)
    return Complementary.model_validate({"sku": sku, "model_version": version, "recommended": found})
