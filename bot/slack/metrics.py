"""Prometheus metrics of the Slack transport (prometheus_client, one registry per app).

Counters of commands (`graphops_commands_total{verb,outcome}`), denials
(`graphops_denials_total`) and approval decisions (`graphops_approvals_total{outcome}`),
a histogram of database API request durations (`graphops_api_request_seconds{provider,
method}`) fed by `Bot.call_listeners`, and a gauge of the operations the tracker
follows (`graphops_tracked_operations`). Label values are bounded: verbs are the
registry's names (anything else is `unknown`), outcomes are the Reply statuses or
approval outcomes, providers the configured names, methods HTTP verbs.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clients.http import CallRecord

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # no `*_created` series: the names stay those documented above


class Metrics:
    """The metrics of one app, exposed by `exposition()`."""

    def __init__(self, tracked: Callable[[], int] = lambda: 0) -> None:
        """`tracked` counts the operations being followed (read at each scrape)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.tracked = tracked
        self._commands = Counter(
            "graphops_commands",
            "Commands received, by verb and outcome.",
            ["verb", "outcome"],
            registry=self.registry,
        )
        self._denials = Counter(
            "graphops_denials", "Commands refused by the permission policy.", registry=self.registry
        )
        self._approvals = Counter(
            "graphops_approvals",
            "Approval clicks, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self._api = Histogram(
            "graphops_api_request_seconds",
            "Database API request durations.",
            ["provider", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        gauge = Gauge(
            "graphops_tracked_operations",
            "Operations being followed right now.",
            registry=self.registry,
        )
        gauge.set_function(self._tracked)

    @property
    def denials(self) -> int:
        """How many commands were denied so far."""
        return int(self.registry.get_sample_value("graphops_denials_total") or 0)

    def command(self, verb: str, outcome: str) -> None:
        """Count one command by verb and Reply status (denials also count apart)."""
        self._commands.labels(verb=verb, outcome=outcome).inc()
        if outcome == "denied":
            self._denials.inc()

    def approval(self, outcome: str) -> None:
        """Count one approval click (approved, denied, refused, expired, not_decided) or
        approved work resumed after a restart (resumed)."""
        self._approvals.labels(outcome=outcome).inc()

    def api_call(self, call: CallRecord) -> None:
        """Observe one API request (a `Bot.call_listeners` entry)."""
        self._api.labels(provider=call.provider, method=call.method.upper()).observe(
            call.ms / 1000.0
        )

    def exposition(self) -> bytes:
        """All metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def _tracked(self) -> float:
        try:
            return float(self.tracked())
        except Exception:  # a broken gauge must not break /metrics
            return 0.0
