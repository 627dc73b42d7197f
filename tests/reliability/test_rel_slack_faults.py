"""Slack faults: 429 (with Retry-After) and 5xx from the Web API while a command is
answered and while the tracker reports steps. Messages arrive late, never not, never
twice: counted per thread and per message key (each step, the final result, the
status edit of the root message)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.reliability.rel_support import SlackStack

STEPS = ["stopping-database", "starting-database", "health-check"]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[SlackStack]:
    built = await SlackStack(tmp_path, step_seconds=0.25).start()
    try:
        yield built
    finally:
        await built.stop()


def body_text(call) -> str:  # type: ignore[no-untyped-def]
    """The fallback text of a message (blocks repeat it, so it is counted once)."""
    return str(call.body.get("text") or "")


async def restart_and_wait(stack: SlackStack) -> str:
    response = await stack.slack.slash("restart sandbox-db")
    assert response.status_code == 200
    await stack.settle(1)
    roots = [c for c in stack.ok_calls("chat.postMessage") if not c.body.get("thread_ts")]
    assert len(roots) == 1, [body_text(c)[:200] for c in roots]  # the answer: once
    threads = {
        c.body["thread_ts"] for c in stack.ok_calls("chat.postMessage") if c.body.get("thread_ts")
    }
    assert len(threads) == 1, threads
    return threads.pop()


def assert_once_each(stack: SlackStack, thread: str) -> None:
    in_thread = [c for c in stack.ok_calls("chat.postMessage") if c.body.get("thread_ts") == thread]
    joined = [body_text(c) for c in in_thread]
    for step in STEPS:  # coalescing may join steps, never repeat or lose one
        assert sum(t.count(step) for t in joined) == 1, (step, joined)
    finals = [t for t in joined if "finished in" in t]
    assert len(finals) == 1, joined
    edits = [c for c in stack.ok_calls("chat.update") if c.body.get("ts") == thread]
    assert len(edits) == 1, [body_text(c)[:200] for c in edits]
    assert "Finished in" in body_text(edits[0])
    assert not stack.ok_calls("chat.postEphemeral"), "nothing should fall back to ephemeral"


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_fault_on_the_answer(stack: SlackStack, status: int) -> None:
    stack.standin.fail_next("chat.postMessage", status=status, times=1, retry_after=1)
    thread = await restart_and_wait(stack)
    assert_once_each(stack, thread)
    failed = [c for c in stack.standin.calls_to("chat.postMessage") if c.status == status]
    assert len(failed) == 1  # the fault was really hit


@pytest.mark.parametrize(
    "method,status,times",
    [
        ("chat.postMessage", 429, 2),
        ("chat.postMessage", 500, 2),
        ("chat.postMessage", 502, 3),
        ("chat.update", 429, 1),
        ("chat.update", 503, 2),
        ("*", 429, 3),
    ],
)
async def test_fault_while_tracking(
    stack: SlackStack, method: str, status: int, times: int
) -> None:
    response = await stack.slack.slash("restart sandbox-db")
    assert response.status_code == 200
    await stack.standin.wait_for("chat.postMessage", timeout=20)  # the answer is out
    stack.standin.fail_next(method, status=status, times=times, retry_after=1)
    await stack.settle(1)
    roots = [c for c in stack.ok_calls("chat.postMessage") if not c.body.get("thread_ts")]
    assert len(roots) == 1
    [thread] = {
        c.body["thread_ts"] for c in stack.ok_calls("chat.postMessage") if c.body.get("thread_ts")
    }
    assert_once_each(stack, thread)
    hit = [c for c in stack.standin.calls if c.status == status]
    assert len(hit) == times, [(c.method, c.status) for c in stack.standin.calls]
    assert stack.tracker.outbox.pending(limit=1) == []


async def test_many_commands_under_a_rate_limit_storm(stack: SlackStack) -> None:
    """Three operations at once, every third Slack call limited: all threads complete."""
    for db in ("sandbox-db", "orders-db"):
        assert (await stack.slack.slash(f"restart {db}")).status_code == 200
    await stack.standin.wait_for("chat.postMessage", count=2, timeout=20)
    stack.standin.fail_next("*", status=429, times=3, retry_after=1)
    stack.standin.fail_next("chat.postMessage", status=500, times=1)
    await stack.settle(2)
    roots = [c for c in stack.ok_calls("chat.postMessage") if not c.body.get("thread_ts")]
    assert len(roots) == 2
    threads = {
        c.body["thread_ts"] for c in stack.ok_calls("chat.postMessage") if c.body.get("thread_ts")
    }
    assert len(threads) == 2
    for thread in threads:
        assert_once_each(stack, thread)
