"""Prometheus metrics of the Slack transport, in the text exposition format.

Hand-written (no client library): counters of commands, denials and approval
decisions, a histogram of API request durations fed by `Bot.call_listeners`,
and a gauge of the operations the tracker follows. Label values are bounded:
verbs are the registry's names (anything else is `unknown`), outcomes are the
Reply statuses or approval outcomes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from clients.http import CallRecord

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.total += 1
        self.sum += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1


@dataclass
class Metrics:
    """Counters, one histogram and one gauge, rendered by `exposition`."""

    commands: Counter[tuple[str, str]] = field(default_factory=Counter)
    denials: int = 0
    approvals: Counter[str] = field(default_factory=Counter)
    api: dict[tuple[str, str], _Histogram] = field(default_factory=dict)
    tracked: Callable[[], int] = lambda: 0

    def command(self, verb: str, outcome: str) -> None:
        """Count one command by verb and Reply status (denials also count apart)."""
        self.commands[(verb, outcome)] += 1
        if outcome == "denied":
            self.denials += 1

    def approval(self, outcome: str) -> None:
        """Count one approval click: approved, denied, refused, expired or already_decided."""
        self.approvals[outcome] += 1

    def api_call(self, call: CallRecord) -> None:
        """Observe one API request (a `Bot.call_listeners` entry)."""
        key = (call.provider, call.method.upper())
        self.api.setdefault(key, _Histogram()).observe(call.ms / 1000.0)

    def exposition(self) -> str:
        """All metrics in the Prometheus text format."""
        lines = [
            "# HELP graphops_commands_total Commands received, by verb and outcome.",
            "# TYPE graphops_commands_total counter",
        ]
        for (verb, outcome), count in sorted(self.commands.items()):
            lines.append(f"graphops_commands_total{_labels(verb=verb, outcome=outcome)} {count}")
        lines += [
            "# HELP graphops_denials_total Commands refused by the permission policy.",
            "# TYPE graphops_denials_total counter",
            f"graphops_denials_total {self.denials}",
            "# HELP graphops_approvals_total Approval clicks, by outcome.",
            "# TYPE graphops_approvals_total counter",
        ]
        for outcome, count in sorted(self.approvals.items()):
            lines.append(f"graphops_approvals_total{_labels(outcome=outcome)} {count}")
        lines += [
            "# HELP graphops_api_request_seconds Database API request durations.",
            "# TYPE graphops_api_request_seconds histogram",
        ]
        for (provider, method), hist in sorted(self.api.items()):
            for bound, count in zip(BUCKETS, hist.counts, strict=True):
                labels = _labels(provider=provider, method=method, le=_number(bound))
                lines.append(f"graphops_api_request_seconds_bucket{labels} {count}")
            labels = _labels(provider=provider, method=method, le="+Inf")
            lines.append(f"graphops_api_request_seconds_bucket{labels} {hist.total}")
            labels = _labels(provider=provider, method=method)
            lines.append(f"graphops_api_request_seconds_sum{labels} {_number(hist.sum)}")
            lines.append(f"graphops_api_request_seconds_count{labels} {hist.total}")
        lines += [
            "# HELP graphops_tracked_operations Operations being followed right now.",
            "# TYPE graphops_tracked_operations gauge",
            f"graphops_tracked_operations {self._tracked()}",
        ]
        return "\n".join(lines) + "\n"

    def _tracked(self) -> int:
        try:
            return int(self.tracked())
        except Exception:  # a broken gauge must not break /metrics
            return 0
