"""What redaction costs: every Reply, log record, audit row and Slack message passes it.

The process's redactor (core/redaction.py) is timed empty (shapes only), with a typical
load (10 config credentials, 4 issued tokens) and full (10 credentials, and `KEEP`
tokens, typed passwords and one-time links: what a long-running process holds at
most). Timed: `redact` of a 2,000-character API error text, `redact_reply` of a reply
with a 100-row table, and the Slack renderer's `render` of that reply (which redacts
each text it makes), against the same render with nothing known.

Run from the repo root:  .venv/bin/python bench/redaction.py [--n 2000]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, summary_ms, table
from bot.slack.blocks import render
from core.redaction import KEEP, REDACTOR, redact, redact_reply
from core.reply import Reply, Table


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(min(50, n)):  # warm-up
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return summary_ms(samples)


def load(credentials: int, tokens: int, passwords: int, links: int) -> None:
    for _ in range(credentials):
        REDACTOR.remember(f"cred-{secrets.token_urlsafe(24)}", "credential")
    for _ in range(tokens):
        REDACTOR.remember(secrets.token_urlsafe(32), "token")
    for _ in range(passwords):
        REDACTOR.remember(f"pw-{secrets.token_urlsafe(9)}", "password")
    for _ in range(links):
        link = f"https://s3.example/e.zip?X-Amz-Signature={secrets.token_hex(32)}"
        REDACTOR.remember(link, "link")


def main(n: int) -> None:
    error = (
        "Server error (500) from console on GET /deployments/environments: "
        + "upstream said: "
        + ("the request could not be completed, " * 60)[:1900]
    )
    reply = Reply(
        title="Databases of development",
        text="Listed by the API just now.",
        tables=[
            Table(
                columns=["Name", "Id", "State", "Plan", "Version"],
                rows=[
                    [f"db-{i:03d}", secrets.token_hex(16), "running", "DS2", "5.26"]
                    for i in range(100)
                ],
            )
        ],
    )
    rows = []
    results: dict[str, dict[str, Any]] = {}
    for label, fill in (
        ("empty (shapes only)", (0, 0, 0, 0)),
        ("typical: 10 credentials, 4 tokens", (10, 4, 0, 0)),
        (f"full: 10 credentials, {KEEP} tokens, passwords, links", (0, KEEP, KEEP, KEEP)),
    ):
        load(*fill)
        known = sum(REDACTOR.known(k) for k in ("credential", "token", "password", "link"))
        text = timed(lambda: redact(error), n)
        whole = timed(lambda: redact_reply(reply), max(1, n // 10))
        slack = timed(lambda: render(reply), max(1, n // 10))
        results[label] = {"known": known, "redact": text, "redact_reply": whole, "render": slack}
        rows.append(
            [
                label,
                known,
                text["p50_ms"],
                text["p99_ms"],
                whole["p50_ms"],
                whole["p99_ms"],
                slack["p50_ms"],
                slack["p99_ms"],
            ]
        )
    print(f"redaction: {n} runs of a 2,000-character text, {max(1, n // 10)} of a 100-row reply")
    print(
        table(
            [
                "secrets known",
                "values",
                "text p50 ms",
                "text p99 ms",
                "reply p50 ms",
                "reply p99 ms",
                "render p50 ms",
                "render p99 ms",
            ],
            rows,
        )
    )
    empty = results["empty (shapes only)"]["render"]["p50_ms"]
    full = results[str(rows[-1][0])]["render"]["p50_ms"]
    met = full - empty < 5.0
    print(
        f"target: a full redactor adds < 5 ms to rendering a 100-row reply: "
        f"{'met' if met else 'MISSED'} (+{full - empty:.2f} ms)"
    )
    emit("redaction", {"n": n, "results": results, "targets": {"render_overhead_lt_5ms": met}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="runs of the text redaction")
    args = parser.parse_args()
    main(args.n)
