"""Every Redis key the project uses, in one place. Values are JSON (orjson) unless said otherwise.

- `{p}id:<identifier>`: customer key (plain string): the identity graph.
- `{p}ids:<customer>`: Redis SET of the customer's identifiers.
- `{p}customer:<customer>`: summary JSON: `customer_id`, `traits` (safe ones only), `lifetime_value`, `orders`,
  `last_store_id`, `last_channel`, `last_seen_at`, `cart`, `cart_value`, `consent`, `channels`, `offers` (active
  coupon codes), `updated_at`.
- `{p}coupon:<code>`: `{"code", "customer", "journey", "action_id", "discount_percent", "issued_at", "expires_at",
  "status": "issued" | "redeemed", "redeemed_at"?, "store_id"?, "order_id"?}`, TTL = expiry + 30 days.
- `{p}audit:<customer>`: sorted set of the customer's audit records (events included), score = the decision's time
  in ms, member = `<ordinal>.<rank> <JSON record>` (ordinal and rank order the records of one millisecond, see
  `serving.redis.Trail`); the newest `TRAIL_LIMIT` kept. `explain` and the API read it.
- `{p}kpis:<partition>`: hash of KPI counts (`orchestrator.measurement.kpis` keys) of one partition of the customers
  topic, absolute values as the worker's `kpis` table holds them (each segment's size among them); the API sums the
  partitions `0 .. {p}kpis:partitions - 1`, never scanning the keyspace.
- `{p}kpis:partitions`: the customers topic's partition count (plain integer), written by the worker at its start and
  by `rebuild-serving`.
- `{p}swept:<partition>`: JSON list of the scheduled journeys (`id@version@deployed_at`) the worker has visited every
  customer of that customers partition for (`stream/loops.sweep`): a new one is visited once.
- `{p}segments`: JSON list of the segment names of `segments.yaml`, written with `{p}journeys`: an empty segment is
  listed with size 0.
- `{p}journeys`: `{journey id: [step names in the YAML's order]}` of the journeys the worker runs, written at its
  start: the dashboard draws funnels in that order.
- `{p}maps`: `{journey id: flow}` of the same journeys (`orchestrator.measurement.maps.journey_maps`: each step's
  name, kind, label, next step and branches), written with `{p}journeys`: the dashboard draws each journey's map
  from it.
- `{p}model:version`: the complementary-products model's version (RFC 3339 text, plain string): it was learned from
  the baskets bought before that time (`engine/affinity.py`). Written with (on a single Redis: after) the lists.
- `{p}model:n:<sku>`: JSON list `[{"sku", "score"}]` of the item's neighbours, best first; written when they may
  have changed, deleted when the item has none any more.
- `{p}model:popular`: JSON list `[{"sku", "score"}]` of the best sellers (score: share of baskets), best first.

All are written by the worker and read by `orchestrator api`, stores and senders.

`<identifier>` is `kind:value` where value is a keyed hash for every kind except `anonymous_id`
(see `orchestrator.engine.identity.identifier_key`). `{p}` is `ORCH_REDIS_PREFIX` (default `orch:`).

No key carries a hash tag: on a Redis Cluster every command names one key, so no two keys need one slot
(docs/identity.md, "On a Redis Cluster"). Braces in the prefix would make one tag of it: every key on one node.
"""

from __future__ import annotations

from dataclasses import dataclass

COUPON_GRACE_SECONDS = 30 * 24 * 3600  # an expired coupon still answers "expired", not "unknown", this long
TRAIL_LIMIT = 1000  # audit records kept per customer for `explain`; the audit topic keeps them all
SAFE_TRAITS = ("first_name", "tier", "timezone", "language", "preferred_store")  # never email, phone, address
MODEL_LIST_LIMIT = 50  # entries kept per neighbour list and in the best sellers: the API's largest `top`


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "orch:"

    def identifier(self, identifier: str) -> str:
        return f"{self.prefix}id:{identifier}"

    def identifiers_of(self, customer: str) -> str:
        return f"{self.prefix}ids:{customer}"

    def customer(self, customer: str) -> str:
        return f"{self.prefix}customer:{customer}"

    def coupon(self, code: str) -> str:
        return f"{self.prefix}coupon:{code}"

    def audit(self, customer: str) -> str:
        return f"{self.prefix}audit:{customer}"

    def kpis(self, partition: int | str) -> str:
        return f"{self.prefix}kpis:{partition}"

    def kpi_partitions(self) -> str:
        return f"{self.prefix}kpis:partitions"

    def segments(self) -> str:
        return f"{self.prefix}segments"

    def swept(self, partition: int) -> str:
        return f"{self.prefix}swept:{partition}"

    def journeys(self) -> str:
        return f"{self.prefix}journeys"

    def maps(self) -> str:
        return f"{self.prefix}maps"

    def model_version(self) -> str:
        return f"{self.prefix}model:version"

    def model_neighbours(self, sku: str) -> str:
        return f"{self.prefix}model:n:{sku}"

    def model_popular(self) -> str:
        return f"{self.prefix}model:popular"
