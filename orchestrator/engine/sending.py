"""Sending: a `send` step or a `decide` step's picks, through the contact policy (engine/policy.py) to an action.

`Engine` (engine/runner.py) inherits this; it is apart so that the journey flow and the sending read on their own.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from orchestrator.contract.conditions import Scope
from orchestrator.contract.journeys import SendSpec
from orchestrator.contract.offers import Offer
from orchestrator.contract.templates import Render, Text
from orchestrator.engine.affinity import Models, model_version
from orchestrator.engine.compiled import CompiledJourney, Node, Recommendation
from orchestrator.engine.coupons import issue
from orchestrator.engine.decision import CompiledOffer, choose, rank, remember_send
from orchestrator.engine.ids import action_id, unit_interval
from orchestrator.engine.localtime import customer_zone
from orchestrator.engine.outcome import Outcome, Record, audit
from orchestrator.engine.policy import DEFER as DEFER_SEND
from orchestrator.engine.policy import SUPPRESS, ContactPolicy, Context, Decision, remember
from orchestrator.engine.recommend import recommended
from orchestrator.engine.state import DEFER, CustomerState, History, Run, Timer, Wait
from orchestrator.timefmt import format_ms


class Sender:
    """What the engine needs to send; the attributes are set by `Engine.__init__`."""

    versions: dict[str, dict[int, CompiledJourney]]
    offers: dict[str, CompiledOffer]
    _offer_recommend: dict[str, Recommendation | None]
    policy: ContactPolicy
    secret: bytes

    def _control(self, key: str) -> bool:
        """Whether the customer is in the programme's global control group: a hash of the key alone."""
        share = self.policy.policy.global_holdout
        return share > 0 and unit_interval("global_holdout", key) * 100 < share

    def _wait(self, out: Outcome, run: Run, node: Node, kind: str, due: int) -> None:
        state = out.state
        state.timer_seq += 1
        token = f"{run.number}.{state.timer_seq}"
        run.wait = Wait(kind, node.path, due, token)
        out.timers.append(Timer(due, state.key, run.journey, token))
        if kind != DEFER and out.keeps("step"):
            self._audit(out, "step", run, step=node.name, type=node.kind, until=format_ms(due))

    def _send(self, out: Outcome, run: Run, node: Node) -> bool:
        """Decide and maybe emit one send; False when the run must wait (quiet hours)."""
        spec = node.send
        assert spec is not None
        decision = self._verdict(out, run, spec)
        if decision.verdict == DEFER_SEND:
            self._defer(out, run, node, [(spec, decision, {})])
            return False
        self._emit(out, run, node, spec, decision, {})
        return True

    def _decide(self, out: Outcome, run: Run, node: Node) -> list[str] | None:
        """Pick the best eligible offers (engine/decision.py) and send each; None when quiet hours hold one back
        (the whole decision is taken again when they end)."""
        state, now = out.state, out.now
        profile = state.profile
        ranked = rank(self.offers, node.offers, self._scope(run, state, now), now, state.offer_sends,
                      lambda channel: self.policy.allowed(profile, channel))  # fmt: skip
        picked, explored = choose(ranked, node.pick, node.explore, run.journey, node.name, state.key)
        self._audit(out, "decided", run, step=node.name, candidates=[c.record() for c in ranked], picked=picked,
                    explore=explored)  # fmt: skip
        tags = [{"offer": oid, **({"explore": True} if explored and i == 0 else {})} for i, oid in enumerate(picked)]
        offers = [self.offers[oid].spec for oid in picked]
        held = [(offer, self._verdict(out, run, offer), tag) for offer, tag in zip(offers, tags, strict=True)]
        if any(decision.verdict == DEFER_SEND for _, decision, _ in held):
            self._defer(out, run, node, [item for item in held if item[1].verdict == DEFER_SEND])
            return None
        for offer, tag in zip(offers, tags, strict=True):  # one by one: each send counts for the next one's cap
            decision = self._verdict(out, run, offer)
            self._emit(out, run, node, offer, decision, tag)
        return picked

    def _defer(self, out: Outcome, run: Run, node: Node, held: list[tuple[SendSpec | Offer, Decision, Record]]) -> None:
        until = max(decision.until or out.now for _, decision, _ in held)
        self._wait(out, run, node, DEFER, until)
        scope = self._scope(run, out.state, out.now)
        for spec, decision, tag in held:
            self._audit(out, "deferred", run, step=node.name, channel=decision.channel,
                        template=self._compiled(node, spec)[1](scope), reason=decision.reason, until=format_ms(until),
                        **tag)  # fmt: skip

    def _compiled(self, node: Node, spec: SendSpec | Offer) -> tuple[Render, Text, Recommendation | None]:
        """A send's or an offer's compiled data, template name and recommendation."""
        if isinstance(spec, Offer):
            offer = self.offers[spec.id]
            return offer.render, offer.template, self._offer_recommend[spec.id]
        assert node.render is not None and node.template is not None
        return node.render, node.template, node.recommend

    def _emit(self, out: Outcome, run: Run, node: Node, spec: SendSpec | Offer, decision: Decision, tag: Record
              ) -> None:  # fmt: skip
        """One send the policy has decided on: suppressed (audited), or an action. `tag`: an offer's id and explore.
        A template name that renders empty (`{{ path }}` with nothing there) is suppressed, reason `no_template`."""
        state, now = out.state, out.now
        render, name, recommend = self._compiled(node, spec)
        scope = self._scope(run, state, now)
        template = name(scope)
        if decision.verdict == SUPPRESS or not template.strip():
            self._audit(out, "suppressed", run, step=node.name, channel=decision.channel, template=template,
                        reason=decision.reason if decision.verdict == SUPPRESS else "no_template", **tag)  # fmt: skip
            return
        offer = tag.get("offer")
        aid = action_id(run.journey, run.version, state.key, run.number, node.path if offer is None else
                        f"{node.path}#{offer}")  # fmt: skip
        action: Record = {
            "action_id": aid,
            "at": out.at,
            "channel": decision.channel,
            "template": template,
            "customer_id": state.key,
            "journey": run.journey,
            "journey_version": run.version,
            "step": node.name,
            "data": render(scope),
        }
        if recommend is not None:
            snapshot = (out.models or Models()).at(now)
            action["data"]["recommended"] = recommended(recommend, scope, state.profile, snapshot)
            action["model_version"] = model_version(snapshot.version)
        if spec.coupon is not None:
            issue(out, run, action, spec.coupon, self.secret)
        if isinstance(spec, Offer):
            action.update(tag)
            remember_send(state.offer_sends, spec, now)
            history = state.history.get(run.journey)
            if history is not None:
                history.offers.append([spec.id, bool(tag.get("explore"))])
        action["event_id"] = run.cause.get("event_id")
        compiled = self.versions[run.journey][run.version]
        if compiled.limits.marketing:
            self.policy.record(state.sends, now, decision.channel)
        if compiled.limits.max_sends is not None:
            history = state.history.setdefault(run.journey, History())
            remember(history.sends, now, now, compiled.limits.max_sends[1])
        out.actions.append(action)
        issued = {"coupon": action["coupon"]["code"]} if "coupon" in action else {}
        self._audit(out, "sent", run, step=node.name, channel=decision.channel, template=template,
                    action_id=aid, **tag, **issued)  # fmt: skip

    def _verdict(self, out: Outcome, run: Run, spec: SendSpec | Offer) -> Decision:
        """The policy's verdict on one send of this run now."""
        state = out.state
        compiled = self.versions[run.journey][run.version]
        history = state.history.get(run.journey)
        ctx = Context(state.profile, state.sends, history.sends if history else [], lambda: self._zone(out),
                      run.holdout, compiled.limits.marketing and self._control(state.key))  # fmt: skip
        return self.policy.decide(spec, compiled.limits, out.now, ctx)

    def _zone(self, out: Outcome) -> zoneinfo.ZoneInfo:
        """The customer's time zone; a `traits.timezone` that names none is audited (`bad_timezone`), once per call."""
        default = self.policy.policy.default_timezone
        zone, bad = customer_zone(out.state.profile, default)
        if bad is not None and not any(r["kind"] == "bad_timezone" for r in out.audit):
            self._audit(out, "bad_timezone", None, timezone=bad, used=default)
        return zone

    @staticmethod
    def _scope(run: Run, state: CustomerState, now: int) -> Scope:
        return (run.cause, run.entry, state.profile, now)

    @staticmethod
    def _audit(out: Outcome, kind: str, of: Run | None, **fields: Any) -> None:
        if out.keep is None or kind in out.keep:
            audit(out, kind, of, **fields)
