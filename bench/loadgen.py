"""The lean load generator: pre-signed Slack requests over raw asyncio sockets, in a child process.

Why not httpx: under a burst of 100, httpx.AsyncClient spends about 165 ms of
its own CPU per round trip on a 2-core machine (issue 17), so an "ack floor"
measured with it is mostly the client. Here every request is built and signed
before the clock starts (Slack's v0 scheme: `X-Slack-Signature: v0=` + hex
HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing secret, with
`X-Slack-Request-Timestamp`; docs.slack.dev/authentication/verifying-requests-from-slack),
every TCP connection is opened before the clock starts (one per request, used
once: Slack sends concurrent requests over separate connections), and the
measured interval is from just before the request's bytes are handed to the
socket to the last byte of the response (status line, headers, `Content-Length`
body or chunked body). The generator runs in its own process (`run`), so its CPU
never competes with the server's event loop.

Modes:
- `burst`: every request written at once (one loop over the sockets), then all
  responses awaited.
- `paced`: request i written at start + i / rate seconds; how late the generator
  itself was (`send_lag_max_ms`) is reported so a skeptic can see it kept pace.

Spec (JSON on the child's stdin): {"url", "path", "secret", "bodies": [str],
"warmup": [str], "mode": "burst" | "paced", "rate": requests per second}.
Answer (JSON on its stdout): {"latencies": [s], "statuses": [int], "wall": s,
"started_at": epoch s when the first request was written, "send_lag_max_ms": ms,
"warmup_statuses": [int]}.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature of `body` sent at `timestamp` (Unix seconds)."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_request(host: str, port: int, path: str, secret: str, body: str) -> bytes:
    """The bytes of one HTTP/1.1 POST of a form-encoded Slack request, signed now."""
    timestamp = str(int(time.time()))
    payload = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"X-Slack-Request-Timestamp: {timestamp}\r\n"
        f"X-Slack-Signature: {signature(secret, timestamp, body)}\r\n"
        "\r\n"
    )
    return head.encode() + payload


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response to its last byte; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status


async def fire(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load `spec` describes; the measured figures (see the module docstring)."""
    parts = urlsplit(spec["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = spec.get("path", "/slack/events")
    secret = spec["secret"]

    warm_reader, warm_writer = await asyncio.open_connection(host, port)
    warmup_statuses = []
    for body in spec.get("warmup", []):
        warm_writer.write(signed_request(host, port, path, secret, body))
        warmup_statuses.append(await read_response(warm_reader))
    warm_writer.close()

    requests = [signed_request(host, port, path, secret, body) for body in spec["bodies"]]
    connections = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in requests))
    sent = [0.0] * len(requests)
    done = [0.0] * len(requests)
    statuses = [0] * len(requests)

    async def answer(i: int, reader: asyncio.StreamReader) -> None:
        statuses[i] = await read_response(reader)
        done[i] = time.perf_counter()

    lag = 0.0
    readers = []
    started_at = time.time()  # epoch, to compare with other processes' records
    wall = time.perf_counter()
    if spec.get("mode", "burst") == "burst":
        for i, (request, (_, writer)) in enumerate(zip(requests, connections, strict=True)):
            sent[i] = time.perf_counter()
            writer.write(request)
        readers = [asyncio.ensure_future(answer(i, r)) for i, (r, _) in enumerate(connections)]
    else:
        interval = 1.0 / float(spec["rate"])
        for i, (request, (reader, writer)) in enumerate(zip(requests, connections, strict=True)):
            due = wall + i * interval
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            sent[i] = time.perf_counter()
            lag = max(lag, sent[i] - due)
            writer.write(request)
            readers.append(asyncio.ensure_future(answer(i, reader)))
    await asyncio.gather(*readers)
    wall = time.perf_counter() - wall
    for _, writer in connections:
        writer.close()
    return {
        "latencies": [d - s for s, d in zip(sent, done, strict=True)],
        "statuses": statuses,
        "wall": round(wall, 3),
        "started_at": started_at,
        "send_lag_max_ms": round(lag * 1000, 3),
        "warmup_statuses": warmup_statuses,
    }


async def run(spec: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Run `fire(spec)` in a child process (`python bench/loadgen.py`); its answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(json.dumps(spec).encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    answer: dict[str, Any] = json.loads(out)
    return answer


if __name__ == "__main__":
    print(json.dumps(asyncio.run(fire(json.load(sys.stdin)))))
