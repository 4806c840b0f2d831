"""Prometheus metrics of one worker, served on ORCH_METRICS_HOST:ORCH_METRICS_PORT at /metrics.

Counters are per process (they restart at zero with the worker, as Prometheus expects); `rate()` of
`orchestrator_events_total` is the events/s. No metric carries a customer id: the endpoint needs no token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("orchestrator.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.events = Counter("orchestrator_events", "Records processed, by agent and outcome",
                              ["agent", "outcome"], registry=registry)  # fmt: skip
        self.actions = Counter("orchestrator_actions", "Actions published, by channel", ["channel"], registry=registry)
        self.suppressions = Counter("orchestrator_suppressions", "Sends not made, by reason", ["reason"],
                                    registry=registry)  # fmt: skip
        self.bad_timezones = Counter("orchestrator_bad_timezones", "Local times computed in the default zone because "
                                     "the customer's traits.timezone names none", registry=registry)  # fmt: skip
        self.dlq = Counter("orchestrator_dlq", "Records sent to the dead-letter topic", registry=registry)
        self.timers_pending = Gauge("orchestrator_timers_pending", "Pending timers on this worker's partitions",
                                    registry=registry)  # fmt: skip
        self.timer_lateness = Histogram("orchestrator_timer_lateness_seconds",
                                        "Wall-clock time from a timer's due time until its customer processed it",
                                        buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
        self.latency = Histogram("orchestrator_processing_latency_seconds",
                                 "Wall-clock time from a record's append to Kafka until its agent finished it",
                                 ["agent"], buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
        self.late = Counter("orchestrator_late_events", "Events processed after a later event of their customer",
                            registry=registry)  # fmt: skip
        self.hops = Counter("orchestrator_event_hops", "Events routed to their customer, by hops: 1 (straight into "
                            "its partition's holding) or 2 (through the customers topic)", ["hops"],
                            registry=registry)  # fmt: skip
        self.held = Gauge("orchestrator_held_records", "Records waiting for the watermark on this worker's partitions",
                          registry=registry)  # fmt: skip
        self.watermark_delay = Gauge("orchestrator_watermark_delay_seconds",
                                     "Wall clock minus the watermark, per customers partition owned",
                                     ["partition"], registry=registry)  # fmt: skip
        self.lag = Gauge("orchestrator_consumer_lag", "Records not yet processed, per input partition owned",
                         ["topic", "partition"], registry=registry)  # fmt: skip

    def track_timers(self, pending: Callable[[], int]) -> None:
        self.timers_pending.set_function(pending)

    def serve(self, host: str, port: int) -> None:
        """Start the /metrics endpoint; a busy port is logged, not fatal (the worker matters more)."""
        if port == 0:
            return
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("metrics not served on %s:%s: %s (set ORCH_METRICS_PORT)", host, port, exc)
            return
        log.info("metrics on http://%s:%s/metrics", host, port)
