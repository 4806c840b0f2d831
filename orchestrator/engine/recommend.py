"""A send's `recommend`: complementary products for the items at a path, from the model a decision at `now` uses."""

from __future__ import annotations

from typing import Any

from orchestrator.contract.conditions import Scope
from orchestrator.engine.affinity import Snapshot
from orchestrator.engine.compiled import Recommendation
from orchestrator.engine.profile import skus


def recommended(
    spec: Recommendation, scope: Scope, profile: dict[str, Any], snapshot: Snapshot
) -> list[dict[str, Any]]:
    """Up to `top` products, best first, leaving out the `for` items, the cart and what the customer bought before."""
    wanted = skus(spec.items(scope))
    exclude = {*wanted, *(item["sku"] for item in profile["cart"]), *profile.get("purchased", ())}
    return snapshot.recommend(wanted, exclude, spec.top)
