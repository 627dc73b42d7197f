"""operations.loop.BackgroundLoop: passes, wakes, and a stop that always stops."""

from __future__ import annotations

import asyncio

from operations.loop import BackgroundLoop


async def test_a_wake_runs_the_next_pass_at_once():
    passes = asyncio.Queue[int]()
    count = 0

    async def step() -> None:
        nonlocal count
        count += 1
        passes.put_nowait(count)

    loop = BackgroundLoop("test", step, 3600.0)
    loop.start()
    assert await asyncio.wait_for(passes.get(), 2.0) == 1
    loop.wake()
    assert await asyncio.wait_for(passes.get(), 2.0) == 2  # not after an hour
    await asyncio.wait_for(loop.stop(), 2.0)


async def test_stop_right_after_a_wake_stops():
    """stop() ends even when a wake() came just before it (a failing delivery wakes its
    loop all the time; with asyncio.wait_for on Python 3.11 a cancellation that met
    the wake could be lost, and `graphops shell -c … | head -1` hung in stop() under
    load: tests/bot/test_bot_processes.py runs that case)."""

    async def step() -> None:
        return None

    loop = BackgroundLoop("test", step, 3600.0)
    loop.start()
    await asyncio.sleep(0.01)  # the loop waits for a wake
    loop.wake()
    await asyncio.wait_for(loop.stop(), 2.0)


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(caplog):
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    loop = BackgroundLoop("test", step, 0.01)
    loop.start()
    for _ in range(200):
        if calls >= 2:
            break
        await asyncio.sleep(0.01)
    await loop.stop()
    assert calls >= 2
    assert "test pass failed" in caplog.text
