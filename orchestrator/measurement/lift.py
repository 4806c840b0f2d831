"""Lift, in words and with 95% intervals: a journey's treatment against its holdout (two proportions), and the
whole programme's treated customers against the global control group (two means, Welch).

Pure arithmetic on counts, shared by `orchestrator.measurement.kpis.summarize` (and so by `report`, the API and the
dashboard).
"""

from __future__ import annotations

import math
from typing import Any

# A lift needs this many runs in each arm, and at least this many conversions and non-conversions in each (the
# usual rule for the normal approximation of a two-proportion test); below it, the verdict says so in words.
MIN_ARM = 30
MIN_OUTCOMES = 5
Z95 = 1.959963984540054
NO_CONTROL = ("no control group: nobody is in the global holdout (the policy's global_holdout), so the "
              "programme's lift cannot be measured")  # fmt: skip


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def lift(entered_t: int, converted_t: int, entered_h: int, converted_h: int) -> dict[str, Any]:
    """Treatment against holdout: absolute lift (difference of conversion rates) with a 95% Wald interval,
    relative lift (the interval scaled by the holdout's rate), the two-sided p-value of the pooled
    two-proportion z-test, and a verdict in words."""
    out: dict[str, Any] = {
        "treatment": {"entered": entered_t, "converted": converted_t, "rate": rate(converted_t, entered_t)},
        "holdout": {"entered": entered_h, "converted": converted_h, "rate": rate(converted_h, entered_h)},
        "absolute": None, "ci95": None, "relative": None, "relative_ci95": None, "p_value": None,
    }  # fmt: skip
    if entered_h == 0:
        out["verdict"] = "no holdout: nobody was held out, so the lift cannot be measured"
        return out
    if entered_t == 0:
        out["verdict"] = "no treatment group yet: nobody entered outside the holdout"
        return out
    p_t, p_h = converted_t / entered_t, converted_h / entered_h
    diff = p_t - p_h
    se = math.sqrt(p_t * (1 - p_t) / entered_t + p_h * (1 - p_h) / entered_h)
    low, high = diff - Z95 * se, diff + Z95 * se
    pooled = (converted_t + converted_h) / (entered_t + entered_h)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / entered_t + 1 / entered_h))
    out.update(absolute=diff, ci95=[low, high], p_value=math.erfc(abs(diff) / se0 / math.sqrt(2)) if se0 else 1.0)
    if p_h > 0:
        out.update(relative=diff / p_h, relative_ci95=[low / p_h, high / p_h])
    arms = ((entered_t, converted_t), (entered_h, converted_h))
    if any(n < MIN_ARM or c < MIN_OUTCOMES or n - c < MIN_OUTCOMES for n, c in arms):
        out["verdict"] = (f"too few to tell: each arm needs at least {MIN_ARM} entries and {MIN_OUTCOMES} "
                          f"conversions and non-conversions (treatment {converted_t}/{entered_t}, "
                          f"holdout {converted_h}/{entered_h})")  # fmt: skip
    elif low > 0:
        out["verdict"] = (f"works: +{100 * diff:.1f} points of conversion over the holdout "
                          f"(95% CI +{100 * low:.1f} to +{100 * high:.1f})")  # fmt: skip
    elif high < 0:
        out["verdict"] = (f"hurts: {100 * diff:.1f} points of conversion against the holdout "
                          f"(95% CI {100 * low:.1f} to {100 * high:.1f})")  # fmt: skip
    else:
        out["verdict"] = (f"no measurable effect: {100 * diff:+.1f} points, 95% CI {100 * low:+.1f} to "
                          f"{100 * high:+.1f} includes zero")  # fmt: skip
    return out


# ------------------------------------------------------------------------------- the programme's lift

GROUPS = ("treated", "control")


def _variance(n: int, total: float, squares: float) -> float:
    """The sample variance (n - 1 in the denominator) from a count, a sum and a sum of squares; never negative."""
    return max(0.0, (squares - total * total / n) / (n - 1))


def mean_lift(treated: tuple[int, float, float], control: tuple[int, float, float], what: str,
              digits: int = 2) -> dict[str, Any]:  # fmt: skip
    """Treated minus control of a per-customer mean, each group given as (customers, sum, sum of squares): the
    difference with its 95% interval (Welch's standard error, normal approximation) and a verdict naming `what`."""
    (n_t, s_t, q_t), (n_c, s_c, q_c) = treated, control
    out: dict[str, Any] = {"lift": None, "ci95": None}
    if n_c == 0:
        out["verdict"] = NO_CONTROL
        return out
    if n_t == 0:
        out["verdict"] = "no treated customers yet: everyone who entered is in the control group"
        return out
    diff = s_t / n_t - s_c / n_c
    out["lift"] = diff
    if n_t < 2 or n_c < 2:
        out["verdict"] = (f"too few to tell: each group needs at least {MIN_ARM} customers (treated {n_t}, "
                          f"control {n_c})")  # fmt: skip
        return out
    se = math.sqrt(_variance(n_t, s_t, q_t) / n_t + _variance(n_c, s_c, q_c) / n_c)
    low, high = diff - Z95 * se, diff + Z95 * se
    out["ci95"] = [low, high]
    shown = f"{diff:+.{digits}f} {what} per customer (95% CI {low:+.{digits}f} to {high:+.{digits}f})"
    if n_t < MIN_ARM or n_c < MIN_ARM:
        out["verdict"] = (f"too few to tell: each group needs at least {MIN_ARM} customers (treated {n_t}, "
                          f"control {n_c}); so far {shown}")  # fmt: skip
    elif low > 0:
        out["verdict"] = f"works: {shown} over the control group"
    elif high < 0:
        out["verdict"] = f"hurts: {shown} against the control group"
    else:
        out["verdict"] = f"no measurable effect: {shown}, the interval includes zero"
    return out


def programme(sums: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The programme's figures from each group's sums (`customers`, `conversions`, `conversions_sq`,
    `revenue_cents`, `revenue_sq`: squares of revenue in whole units): per group its customers, conversions and
    revenue with their means per customer, and the lift of each mean, treated minus control."""
    out: dict[str, Any] = {}
    for name in GROUPS:
        g = sums.get(name, {})
        n, conversions, revenue = g.get("customers", 0), g.get("conversions", 0), g.get("revenue_cents", 0) / 100
        out[name] = {"customers": n, "conversions": conversions, "revenue": round(revenue, 2),
                      "conversions_per_customer": None if not n else round(conversions / n, 4),
                      "revenue_per_customer": None if not n else round(revenue / n, 2)}  # fmt: skip

    def group(name: str, total: str, squares: str, scale: float) -> tuple[int, float, float]:
        g = sums.get(name, {})
        return g.get("customers", 0), g.get(total, 0) / scale, float(g.get(squares, 0))

    out["conversions_per_customer"] = mean_lift(group("treated", "conversions", "conversions_sq", 1),
                                                group("control", "conversions", "conversions_sq", 1),
                                                "conversions", digits=3)  # fmt: skip
    out["revenue_per_customer"] = mean_lift(group("treated", "revenue_cents", "revenue_sq", 100),
                                            group("control", "revenue_cents", "revenue_sq", 100), "revenue")
    out["control_group"] = bool(out["control"]["customers"])
    return out
