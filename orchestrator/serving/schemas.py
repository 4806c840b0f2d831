"""The API's bodies as pydantic models: the one description of what `orchestrator api` answers.

Handlers build every JSON answer through these models (`body`), and `/openapi.json` is generated from their JSON
Schema (`orchestrator.serving.openapi`), so the document cannot say one thing while the API serves another.

- What the API composes itself is closed (`extra="forbid"`, JSON Schema `additionalProperties: false`): errors,
  health, the customer answer, the timeline, the KPIs.
- What it passes on as the worker stored it (a coupon, a summary, a cart line, an audit record) names every field
  the worker writes and allows others (`extra="allow"`): an answer from a newer worker's data is served, not
  failed. The tests still check that every field a real answer carries is named here.
- Models are strict: a stored value of the wrong type (a string for a number, `true` for a count) is an internal
  error (500), never silently converted. Numbers keep their JSON type (`Number` is int or float, documented as
  `number`), and a field the stored record lacks stays absent (`body` dumps with `exclude_unset`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

COUPON_CODE_PATTERN = r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}$"

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]  # RFC 3339, as written
CouponCode = Annotated[str, Field(pattern=COUPON_CODE_PATTERN, examples=["K7QM-3XDP-9W2A-HF4T"])]
Count = dict[str, int]
# The default of a field a stored record may lack: never served (`body` leaves unset fields out), so never null.
ABSENT: Any = None
Interval = Annotated[list[Number], Field(min_length=2, max_length=2, description="95% interval: [low, high]")]


class Closed(BaseModel):
    """An answer the API composes: every field is documented, no other is served."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Stored(BaseModel):
    """Data the worker wrote, passed on: its documented fields are checked, others are served as stored."""

    model_config = ConfigDict(strict=True, extra="allow")


def body(model: BaseModel) -> dict[str, Any]:
    """The JSON answer of a model: the fields given (a stored record's absent field stays absent), by alias."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


# ------------------------------------------------------------------ small answers


class Error(Closed):
    """Every error: the reason in words, never a traceback."""

    error: str = Field(examples=["unknown customer"])


class Health(Closed):
    status: Literal["ok", "unavailable"]


class LoginForm(Closed):
    """`POST /login`, form-encoded: the API token, which comes back as the dashboard's cookie."""

    token: str = Field(description="the value of ORCH_API_TOKEN", json_schema_extra={"format": "password"})


# ------------------------------------------------------------------ coupons


class Coupon(Stored):
    """A coupon and its state now: `expired` from `expires_at` on unless redeemed. The fields after `state` are the
    coupon as the worker stored it."""

    code: CouponCode
    state: Literal["valid", "expired", "redeemed"] = Field(description="the answer to act on: honour only `valid`")
    customer: str = Field(ABSENT, description="customer key the coupon was issued to")
    journey: str = Field(ABSENT, description="the journey that issued it")
    run: int = Field(ABSENT, description="the customer's run of that journey that issued it (1, 2, ...)")
    action_id: str = Field(ABSENT, description="the send that carried it")
    issued_at: DateTime = Field(ABSENT)
    discount_percent: Number = Field(ABSENT)
    expires_at: DateTime = Field(ABSENT, description="missing or unreadable: the coupon is `expired`")
    status: Literal["issued", "redeemed"] = Field(ABSENT, description="as stored by the worker")
    redeemed_at: DateTime = Field(ABSENT)
    store_id: str | None = Field(ABSENT, description="where it was redeemed, when the till said")
    order_id: str | None = Field(ABSENT, description="the order it paid, when the till said")
    revenue: Number = Field(ABSENT, description="the order's value: the redemption's, else its order's purchase")


class UnknownOffer(Closed):
    """A code the summary lists whose coupon is gone from Redis (expired more than 30 days ago)."""

    code: CouponCode
    state: Literal["unknown"]


class UnknownCoupon(Closed):
    """Never issued, or expired more than 30 days ago (the coupon key's TTL)."""

    code: CouponCode
    state: Literal["unknown"]
    error: str = Field(examples=["unknown coupon"])


# ------------------------------------------------------------------ customers


class Traits(Closed):
    """The safe traits (`keys.SAFE_TRAITS`), as the customer's identify or profile_update events gave them (usually
    strings). Never e-mail, phone or address: the worker stores only these and the API filters again."""

    first_name: Any = None
    tier: Any = None
    timezone: Any = None
    language: Any = None
    preferred_store: Any = None


class CartItem(Stored):
    sku: str
    price: Number
    quantity: int
    name: str = Field(ABSENT)


class Summary(Stored):
    """The worker's summary of a customer, written when the customer last changed (safe traits only; never e-mail,
    phone or address)."""

    customer_id: str = Field(description="the customer key")
    traits: Traits
    lifetime_value: Number = Field(description="sum of the purchases' values")
    orders: int
    last_store_id: str | None
    last_channel: str | None
    last_seen_at: DateTime | None
    cart: list[CartItem]
    cart_value: Number
    consent: dict[str, bool] = Field(description="per channel: whether the customer agreed to be contacted")
    channels: list[str] = Field(description="the channels the customer used, first used first")
    offers: list[CouponCode] = Field(description="active coupon codes (issued, unexpired) when it was written")
    updated_at: DateTime


class Customer(Closed):
    customer: str = Field(description="customer key, e.g. `c-1001` or `anon:<anonymous_id>`")
    summary: Summary
    offers: list[Annotated[Coupon | UnknownOffer, Field(discriminator="state")]] = Field(
        description="each code of `summary.offers` (at most 100) with its state now; honour only `valid` ones"
    )


# ------------------------------------------------------------------ the audit trail


class OfferCandidate(Stored):
    """One offer a `decide` step considered: eligible with its score, or out with the reason."""

    offer: str
    score: Number = Field(ABSENT, description="eligible: its score (higher ranks first)")
    out: str = Field(ABSENT, description="not eligible: not_valid, not_eligible, capped or no_consent")


class SentOffer(Stored):
    offer: str
    explore: bool = Field(ABSENT, description="picked at random among the eligible ones, not as the best")


class AuditRecord(Stored):
    """One record of the customer's audit trail: an event, or a decision with its reason (docs/contract.md, "Audit
    records"). `at`, `customer` and `kind` are always there; the others depend on the kind."""

    at: DateTime = Field(description="the event's time, or the decision's")
    customer: str = Field(description="the customer key it happened to (an anonymous one merged since included)")
    kind: str = Field(
        description="event, duplicate, entered, step, sent, suppressed, deferred, matched, timed_out, exited, "
        "converted, decided, merged, coupon_redeemed, coupon_revenue, coupon_rejected, erased or identity_conflict",
        examples=["sent"],
    )
    journey: str = Field(ABSENT)
    version: int = Field(ABSENT, description="the journey's version")
    run: int = Field(ABSENT, description="the customer's run of the journey")
    event_id: str = Field(ABSENT)
    type: str = Field(ABSENT, description="the event's type (event, duplicate) or the step's (step)")
    channel: str = Field(ABSENT)
    holdout: bool = Field(ABSENT, description="entered, converted: the run is in the holdout")
    step: str = Field(ABSENT)
    until: DateTime = Field(ABSENT, description="step (a wait), deferred: until when")
    template: str = Field(ABSENT)
    action_id: str = Field(ABSENT)
    coupon: CouponCode = Field(ABSENT, description="sent: the coupon the action carried")
    reason: str = Field(ABSENT, description="suppressed, deferred, exited, coupon_rejected: why")
    path: list[str] = Field(ABSENT, description="converted: the channels used from entry to the goal")
    via: Literal["coupon"] = Field(ABSENT, description="converted: by a redeemed coupon")
    from_: str = Field(ABSENT, alias="from", description="merged, and exited with reason merged: the anonymous "
                       "customer whose run it was; identity_conflict: the customer the identifier was linked "
                       "to")  # fmt: skip
    into: str = Field(ABSENT, description="merged: the customer it was merged into")
    code: CouponCode = Field(ABSENT, description="coupon_*: the coupon")
    value: Number = Field(ABSENT, description="coupon_redeemed, coupon_revenue: the order's value")
    identifier_kind: str = Field(ABSENT, description="identity_conflict: the kind of the identifier that moved")
    candidates: list[OfferCandidate] = Field(ABSENT, description="decided: the offers considered, eligible ones best "
                                             "first, then those out")  # fmt: skip
    picked: list[str] = Field(ABSENT, description="decided: the offers picked, best first (empty: the step's "
                              "on_none branch runs)")  # fmt: skip
    explore: bool = Field(ABSENT, description="decided, and sent, suppressed, deferred of its offer: picked at random "
                          "among the eligible offers (absent on a send: false)")  # fmt: skip
    offer: str = Field(ABSENT, description="sent, suppressed, deferred: the offer a decide step picked")
    offers: list[SentOffer] = Field(ABSENT, description="converted: the offers sent in the run")


class Timeline(Closed):
    customer: str
    records: list[AuditRecord] = Field(description="oldest first; the newest 1,000")


# ------------------------------------------------------------------ complementary products


class RecommendedProduct(Closed):
    sku: str
    score: Number = Field(description="affinity: cosine with the item (0-1); popular: share of baskets holding it")
    source: Literal["affinity", "popular"] = Field(
        description="`affinity`: bought with the item; `popular`: a best seller, filling up the list"
    )


class Complementary(Closed):
    """Products to offer with an item, from the model the worker learned of the baskets (docs/api.md)."""

    model_config = ConfigDict(protected_namespaces=())  # the field `model_version` is ours, not pydantic's

    sku: str
    model_version: DateTime = Field(description="the model was learned from the baskets bought before this time")
    recommended: list[RecommendedProduct] = Field(
        description="best first: the item's neighbours, then best sellers; never the item itself"
    )


# ------------------------------------------------------------------ KPIs (orchestrator.measurement.kpis.summarize)


class Arm(Closed):
    entered: int
    converted: int
    rate: Number | None


class Lift(Closed):
    """Treatment against holdout (docs/kpis.md, "Lift over the holdout"); figures are null when not measurable."""

    treatment: Arm
    holdout: Arm
    absolute: Number | None
    ci95: Interval | None
    relative: Number | None
    relative_ci95: Interval | None
    p_value: Number | None
    verdict: str


class StepCounts(Closed):
    reached: int
    sent: int
    suppressed: int
    suppressed_by: Count = Field(description="suppressions by reason")
    matched: int = Field(description="a `wait_for`: runs whose awaited event came")
    timed_out: int = Field(description="a `wait_for`: runs whose wait ran out")
    exited: Count = Field(description="exits that name this step (`no_date`), by reason")


class JourneyKpis(Closed):
    entered: int
    active: int
    exited: Count = Field(description="by reason")
    sends: Count = Field(description="by channel")
    suppressed: Count = Field(description="by reason")
    conversions: int
    coupons_redeemed: int
    not_entered: Count = Field(description="triggers that did not start a run, by reason")
    steps: dict[str, StepCounts] = Field(description="in the order the journey's YAML lists them")
    lift: Lift


class TopPath(Closed):
    path: list[str]
    conversions: int


class CrossChannel(Closed):
    conversions: int
    cross_channel: int
    rate: Number | None
    top_paths: list[TopPath]


class ClvFigures(Closed):
    customers: int
    mean: Number | None
    median: Number | None
    total: Number


class Clv(Closed):
    all: ClvFigures
    single_channel: ClvFigures
    multi_channel: ClvFigures


class Engagement(Closed):
    customers: int
    interactions: int
    interactions_per_customer: Number | None
    interactions_histogram: Count = Field(description="customers by number of interactions")
    channels_histogram: Count = Field(description="customers by number of distinct channels")


class CouponCounts(Closed):
    issued: int
    redeemed: int
    redemption_rate: Number | None
    revenue: Number


class DayCounts(Closed):
    entered: int
    sent: int
    conversions: int
    coupons_redeemed: int


class OfferArm(Closed):
    sent: int
    converted: int = Field(description="conversions of the runs it was sent in (once per run)")
    conversion_rate: Number | None = Field(description="converted / sent; null with no send")


class OfferKpis(Closed):
    """One offer of the `decide` steps (docs/kpis.md, "Offers")."""

    sent: int
    converted: int = Field(description="conversions of the runs it was sent in (once per run)")
    conversion_rate: Number | None = Field(description="converted / sent; null with no send")
    chosen: OfferArm = Field(description="sends as the best eligible offer")
    explore: OfferArm = Field(description="sends as a uniformly chosen eligible offer (the `explore` share)")
    picked: int = Field(description="decisions that picked it")
    candidate: int = Field(description="decisions that considered it")
    out: Count = Field(description="decisions it was out of, by reason")


class ProgrammeGroup(Closed):
    customers: int
    conversions: int
    revenue: Number
    conversions_per_customer: Number | None
    revenue_per_customer: Number | None


class MeanLift(Closed):
    lift: Number | None = Field(description="treated minus control, per customer")
    ci95: Interval | None
    verdict: str


class Programme(Closed):
    """Treated customers against the global control group (docs/kpis.md, "The programme's lift")."""

    treated: ProgrammeGroup
    control: ProgrammeGroup
    conversions_per_customer: MeanLift
    revenue_per_customer: MeanLift
    control_group: bool = Field(description="whether anyone is in the global control group")


class Occurrence(Closed):
    """One occurrence of a scheduled journey (docs/kpis.md, "Broadcasts")."""

    occurrence: str = Field(description="its local date (YYYY-MM-DD), or the instant of an `at` schedule")
    audience: int = Field(description="members at their entry instants (a worker counts them as it writes its "
                                      "broadcast records)")  # fmt: skip
    entered: int
    held_out: int
    sent: int
    converted: int
    suppressed: Count = Field(description="the sends of its runs held back, by reason")
    not_entered: Count = Field(description="members who did not enter, by reason")


class Segments(Closed):
    """Each segment's current size (docs/api.md): kept by the worker per partition as it keeps the KPIs."""

    segments: Count = Field(description="segment name -> known customers in it, over every partition")
    partitions: dict[str, Count] = Field(description="customers partition -> segment name -> size")


class Kpis(Closed):
    """The KPIs (docs/kpis.md), as `orchestrator report --json` prints them."""

    journeys: dict[str, JourneyKpis]
    cross_channel: CrossChannel
    clv: Clv
    engagement: Engagement
    coupons: CouponCounts
    channels: Count = Field(description="sends by channel over all journeys")
    days: dict[str, DayCounts] = Field(description="per UTC day (YYYY-MM-DD)")
    offers: dict[str, OfferKpis] = Field(description="per offer of the `decide` steps, by id")
    programme: Programme
    broadcasts: dict[str, list[Occurrence]] = Field(description="per scheduled journey, its occurrences in order")
    segments: dict[str, dict[str, int]] = Field(
        ABSENT, description="`report`: each segment's size at the end of each UTC day of the log")
