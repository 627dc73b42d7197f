"""API faults on every verb: the bot never crashes, says what failed and whether the
action happened, and never sends a second mutating request for one command.

Every case runs one command against a fresh Console simulator (real HTTP on loopback)
with one fault injected on the verb's mutating request, then counts that request in
the simulator's log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from simulators.base import ManualClock
from tests.reliability.rel_support import (
    ALICE,
    BOB,
    DEV,
    ONCALL,
    SlowConsole,
    approve_line,
    console_config,
    run,
    text_of,
)
from tests.support import ENVIRON, SECRET, SECRET_ID

CLIENT_TIMEOUT = 0.25  # seconds; a held answer (HOLD) is seen as a timeout
HOLD = 0.6


@dataclass(frozen=True)
class VerbCase:
    name: str
    line: str  # may contain {snapshot} and {file}
    method: str
    path: str  # regex of the one mutating request
    channel: str = DEV
    approver: str | None = None  # set: the command needs an approval


VERBS = [
    VerbCase("pause", "pause sandbox-db", "POST", r"/pause$"),
    VerbCase("resume", "resume catalog-db", "POST", r"/start$"),
    VerbCase("restart", "restart sandbox-db", "POST", r"/restart$"),
    VerbCase("snapshot", "snapshot sandbox-db", "POST", r"/snapshots/manual$"),
    VerbCase("clone", "clone sandbox-db sandbox-copy", "POST", r"/clone$"),
    VerbCase(
        "create", "create new-db plan=ds1 version=5.24.0 env=development", "POST", r"/graphneo$"
    ),
    VerbCase("terminate", "terminate sandbox-db", "DELETE", r"/graphneo/\w+$", approver=ALICE),
    VerbCase(
        "switch",
        "switch orders-db to orders-replica",
        "POST",
        r"/connections/switch$",
        channel=ONCALL,
        approver=BOB,
    ),
    VerbCase(
        "restore-into",
        "restore {snapshot} into billing-db",
        "POST",
        r"/graphneo/\w+/restore$",
        channel=ONCALL,
        approver=BOB,
    ),
    VerbCase("import", "import sandbox-db {file}", "POST", r"/import$", approver=ALICE),
]

# fault -> what the person must be told about the outcome
UNKNOWN, NOT_DONE, RECOVERED = "unknown", "not done", "recovered"
FAULTS = {
    "500": UNKNOWN,
    "502": UNKNOWN,
    "503": NOT_DONE,
    "504": UNKNOWN,
    "timeout": UNKNOWN,
    "drop": UNKNOWN,
    "drop-after-effect": UNKNOWN,
    "409": NOT_DONE,
    "expired-token": RECOVERED,
}
NAMED = {  # what the message must name about the failure
    "expired-token": "401",
    "500": "500",
    "502": "502",
    "503": "503",
    "504": "504",
    "timeout": "Timed out",
    "drop": "Connection failed",
    "drop-after-effect": "Connection failed",
    "409": "409",
}


@pytest.fixture
async def sim() -> AsyncIterator[SlowConsole]:
    server = SlowConsole(client_id=SECRET_ID, client_secret=SECRET, step_seconds=1.0)
    server.clock = ManualClock()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def fbot(sim: SlowConsole, tmp_path: Path) -> AsyncIterator[Bot]:
    config = console_config(sim.base_url, tmp_path / "bot.sqlite3", timeout=CLIENT_TIMEOUT)
    built = build_bot(config, environ=ENVIRON)
    apply_demo_policy(built)
    try:
        yield built
    finally:
        await built.aclose()


def inject(sim: SlowConsole, fault: str, method: str, path: str) -> None:
    if fault.isdigit():
        sim.faults.fail_next(method, path, status=int(fault))
    elif fault == "timeout":
        sim.hold_next(method, path, HOLD)
    elif fault == "drop":
        sim.faults.fail_next(method, path, drop=True)
    elif fault == "drop-after-effect":
        sim.faults.fail_next(method, path, drop=True, after_effect=True)
    elif fault == "expired-token":
        assert sim.expire_tokens() >= 1
    else:  # pragma: no cover
        raise AssertionError(fault)


def mutations(sim: SlowConsole) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in sim.mutating_requests()]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("case", VERBS, ids=[v.name for v in VERBS])
async def test_mutating_verb_under_fault(
    case: VerbCase, fault: str, sim: SlowConsole, fbot: Bot, tmp_path: Path
) -> None:
    dump = tmp_path / "graph.dump"
    dump.write_bytes(b"g" * 50_000)
    line = case.line.format(snapshot=sim.snapshots[0].id, file=dump)
    # warm up: a token and the name cache, so the fault hits the mutating request
    assert (await run(fbot, "list", channel=case.channel)).status == "ok"
    card = None
    if case.approver:
        card = await run(fbot, line, channel=case.channel)
        assert card.status == "pending", text_of(card)
    assert mutations(sim) == []

    inject(sim, fault, case.method, case.path)
    if card is not None:
        reply = await run(fbot, approve_line(card), user=case.approver, channel=case.channel)
    else:
        reply = await run(fbot, line, channel=case.channel)
    text = text_of(reply)
    if fault == "timeout":
        # the held request may never be logged (the client went away): count arrivals
        await asyncio.sleep(HOLD)
        arrived = [a for a in sim.arrived if a[0] == case.method and re.search(case.path, a[1])]
        assert len(arrived) == 1, arrived
        assert not [m for m in mutations(sim) if not re.search(case.path, m[1])], mutations(sim)

    ours = [m for m in mutations(sim) if m[0] == case.method]
    if fault == "timeout":
        ours = [(m, p, 0) for m, p in arrived]
    if fault != "timeout":
        assert [m for m in mutations(sim) if m not in ours] == [], mutations(sim)
    expected = FAULTS[fault]
    if case.name == "import" and fault == "expired-token":
        # a streamed upload cannot be replayed after the 401: refused, and said so
        expected = NOT_DONE
    if expected == RECOVERED:
        # the 401 was refused before any effect; one re-authenticated request did it
        assert reply.status == "ok", text
        assert [s for _, _, s in ours if s != 401] == [202], ours
        assert len(ours) <= 2
    else:
        assert reply.status == "error", text
        assert len(ours) == 1, f"{len(ours)} mutating requests for one command: {ours}"
        assert NAMED[fault] in text, text
        assert case.method in text, text  # names the call that failed
        if expected == UNKNOWN:
            assert "whether it took effect is unknown" in text, text
        else:
            assert "It was not done" in text, text
        assert "Traceback" not in text

    if card is not None:  # a second click never sends the request again
        again = await run(fbot, approve_line(card), user=case.approver, channel=case.channel)
        assert again.status in ("info", "error", "denied"), text_of(again)
        await asyncio.sleep(0.05)
        if fault == "timeout":
            matching = [
                a for a in sim.arrived if a[0] == case.method and re.search(case.path, a[1])
            ]
            assert len(matching) == 1, matching
        else:
            assert [m for m in mutations(sim) if m[0] == case.method] == ours


READS = ["list", "show sandbox-db", "snapshots sandbox-db", "ops sandbox-db"]


@pytest.mark.parametrize("fault", ["503", "500", "drop", "timeout"])
@pytest.mark.parametrize("line", READS)
async def test_read_verb_under_persistent_fault(
    line: str, fault: str, sim: SlowConsole, fbot: Bot
) -> None:
    assert (await run(fbot, "show sandbox-db")).status == "ok"  # token + name cache
    fbot.services.resolver.invalidate("console")  # the brief name cache would answer `list`
    sim.requests.clear()
    if fault == "timeout":
        sim.hold_next("GET", r"^/deployments/", HOLD, times=100)
    elif fault == "drop":
        sim.faults.drop_rate = 1.0
    else:
        sim.faults.error_rate, sim.faults.error_status = 1.0, int(fault)
    reply = await run(fbot, line)
    text = text_of(reply)
    assert reply.status == "error", text
    assert {"503": "503", "500": "500", "drop": "Connection failed", "timeout": "Timed out"}[
        fault
    ] in text
    assert "GET" in text and "Traceback" not in text
    assert sim.mutating_requests() == []
    # GETs are retried, but boundedly: at most 3 attempts per path
    paths = [r.path for r in sim.requests]
    assert all(paths.count(p) <= 3 for p in paths), paths


@pytest.mark.parametrize("fault", ["503", "502", "drop"])
@pytest.mark.parametrize("line", READS)
async def test_read_verb_recovers_from_one_fault(
    line: str, fault: str, sim: SlowConsole, fbot: Bot
) -> None:
    assert (await run(fbot, "show sandbox-db")).status == "ok"
    if fault == "drop":
        sim.faults.fail_next("GET", r"^/deployments/", drop=True)
    else:
        sim.faults.fail_next("GET", r"^/deployments/", status=int(fault))
    reply = await run(fbot, line)
    assert reply.status == "ok", text_of(reply)
