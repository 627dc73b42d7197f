"""SimulatorServer: request log, fault injection, drops, admin endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from simulators.base import REDACTED, ManualClock, SimulatedError, SimulatorServer


class Counter(SimulatorServer):
    """A tiny simulator: GET /count reads, POST /count increments."""

    token_path = "/token"

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.count = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/count", self.get_count),
            web.post("/count", self.incr),
            web.post("/token", self.token),
            web.get("/boom", self.boom),
        ]

    async def get_count(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count})

    async def incr(self, request: web.Request) -> web.Response:
        self.count += 1
        return web.json_response({"count": self.count}, status=201)

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t"}, status=201)

    async def boom(self, request: web.Request) -> web.Response:
        raise SimulatedError(418, "teapot")

    def state_dump(self) -> dict[str, Any]:
        return {"count": self.count}


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    s = Counter()
    s.clock = ManualClock(50.0)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def http(counter: Counter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=counter.base_url, timeout=5) as c:
        yield c


async def test_base_url_is_loopback(counter: Counter) -> None:
    assert counter.base_url.startswith("http://127.0.0.1:")


async def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError):
        await Counter().start(host="0.0.0.0")


async def test_errors_are_json(http: httpx.AsyncClient) -> None:
    r = await http.get("/boom")
    assert (r.status_code, r.json()) == (418, {"error": "teapot"})
    r = await http.get("/nowhere")
    assert r.status_code == 404 and "error" in r.json()
    r = await http.delete("/count")
    assert r.status_code == 405 and "error" in r.json()


async def test_request_log_and_redaction(counter: Counter, http: httpx.AsyncClient) -> None:
    await http.get("/count", params={"a": "1"})
    await http.post("/token", data={"client_id": "x", "client_secret": "s3cret"})
    await http.post("/count", json={"password": "pw", "nested": {"api_key": "k"}, "n": 1})
    await http.post("/count", files={"file": ("a.bin", b"x" * 10)})
    log = counter.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/count", 200),
        ("POST", "/token", 201),
        ("POST", "/count", 201),
        ("POST", "/count", 201),
    ]
    assert log[0].query == "a=1" and log[0].at == 50.0
    assert log[1].body == {"client_id": "x", "client_secret": REDACTED}
    assert log[2].body == {"password": REDACTED, "nested": {"api_key": REDACTED}, "n": 1}
    assert isinstance(log[3].body, str) and log[3].body.startswith("<multipart ")
    assert "s3cret" not in repr(log) and "pw" not in repr(log[2])
    assert [r.path for r in counter.mutating_requests()] == ["/count", "/count"]
    assert len(counter.requests_to("GET", r"^/count$")) == 1
    assert len(counter.requests_to(path_regex="count")) == 3


async def test_latency(counter: Counter, http: httpx.AsyncClient) -> None:
    # No wall-clock figure: a delayed request sent first answers after an admin
    # request (never delayed) sent second.
    counter.faults.latency = 2.0
    delayed = asyncio.create_task(http.get("/count"))
    admin = asyncio.create_task(http.get("/_sim/state"))
    done, _ = await asyncio.wait({delayed, admin}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {admin} and admin.result().status_code == 200
    assert (await delayed).status_code == 200


async def test_error_rate_is_seeded(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.error_rate = 0.5
    counter.faults.error_status = 503

    async def run() -> list[int]:
        return [(await http.get("/count")).status_code for _ in range(20)]

    first = await run()
    assert set(first) == {200, 503}
    r = await http.post(
        "/_sim/faults", json={"reset": True, "error_rate": 0.5, "error_status": 503}
    )
    assert r.status_code == 200
    assert await run() == first  # reseeded: same sequence
    bad = [r for r in counter.requests if r.status == 503]
    assert bad and all(r.status == 503 for r in bad)


async def test_injected_error_body(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.error_rate = 1.0
    r = await http.get("/count")
    assert (r.status_code, r.json()) == (500, {"error": "simulated fault"})


async def test_fail_next_rules_in_order(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.fail_next("POST", "^/count$", 502, times=2)
    counter.faults.fail_next("*", "count", 429, body={"error": "slow down"})
    assert (await http.get("/count")).status_code == 429  # first rule is POST only
    assert (await http.post("/count")).status_code == 502
    assert (await http.post("/count")).status_code == 502
    assert (await http.post("/count")).status_code == 201
    assert counter.count == 1  # injected errors had no effect
    assert counter.faults.rules == []


async def test_fail_next_after_effect(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.fail_next("POST", "/count", 500, after_effect=True)
    r = await http.post("/count")
    assert r.status_code == 500 and counter.count == 1


async def test_drop_before_effect(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.fail_next("POST", "/count", drop=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await http.post("/count")
    assert counter.count == 0
    assert counter.requests[-1].status == 0
    assert (await http.get("/count")).json() == {"count": 0}  # server still fine


async def test_drop_rate_and_drop_after_effect(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.drop_rate = 1.0
    counter.faults.drop_after_effect = True
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await http.post("/count")
    assert counter.count == 1  # effect applied, no answer
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await http.get("/count")  # reads are dropped too
    assert [r.status for r in counter.requests] == [0, 0]
    counter.faults.reset()
    assert (await http.get("/count")).json() == {"count": 1}


async def test_rule_drop_after_effect(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.fail_next("POST", "/count", drop=True, after_effect=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await http.post("/count")
    assert counter.count == 1


async def test_admin_endpoints(counter: Counter, http: httpx.AsyncClient) -> None:
    await http.get("/count")
    log = (await http.get("/_sim/requests")).json()
    assert [{k: v for k, v in entry.items() if k != "headers"} for entry in log] == [
        {"method": "GET", "path": "/count", "query": "", "status": 200, "body": None, "at": 50.0}
    ]
    assert log[0]["headers"]["accept"] == "*/*"
    assert (await http.get("/_sim/state")).json() == {"count": 0}
    assert (await http.post("/_sim/expire-tokens")).json() == {"expired": 0}
    r = await http.post(
        "/_sim/faults",
        json={
            "latency": 0,
            "fail_next": [{"method": "GET", "path_regex": "/count", "status": 503}],
        },
    )
    assert r.status_code == 200 and r.json()["fail_next"][0]["status"] == 503
    assert (await http.get("/count")).status_code == 503
    assert (await http.post("/_sim/reset-log")).json() == {"cleared": 2}
    assert counter.requests == []  # admin calls are never recorded
    assert (await http.post("/_sim/faults", json={"nope": 1})).status_code == 400
    assert (await http.post("/_sim/faults", json={"latency": "x"})).status_code == 400
    assert (await http.post("/_sim/faults", content=b"{")).status_code == 400


async def test_admin_never_faulted(counter: Counter, http: httpx.AsyncClient) -> None:
    counter.faults.error_rate = 1.0
    counter.faults.fail_next("*", ".*", drop=True)
    assert (await http.get("/_sim/requests")).status_code == 200
    assert len(counter.faults.rules) == 1
