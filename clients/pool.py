"""An httpx transport whose connection pool does its bookkeeping in linear time.

httpcore 1.0's `AsyncConnectionPool._assign_requests_to_connections` runs twice per
request (when it is queued and when its response is closed). For each idle
connection it builds a list over every connection only to take its length (which is
just the number of connections), so each call costs idle x connections `is_idle()`
calls: with 60 connections kept alive for a busy tracker that was ~40% of the bot's
CPU (bench/tracker.py, issue 17). And it hands the same idle HTTP/1.1 connection to
every request queued meanwhile, so all but one fail with ConnectionNotAvailable and go
round again. `LeanConnectionPool` makes upstream's decisions, in upstream's order, in
linear time, and gives a connection to one waiting request at a time. HTTP/1.1 only
(`lean_transport` never enables HTTP/2, where one connection serves many requests).

If a future httpcore changes the pool's internals, `lean_transport` falls back to
httpx's own transport (same limits), so this is an optimisation and never a fork.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpcore
import httpx

log = logging.getLogger("graphops.http")

#: How often every idle connection is asked whether the server closed it (seconds).
SWEEP_SECONDS = 1.0

_EXPECTED = ("_connections", "_requests", "_max_keepalive_connections", "_max_connections")


class LeanConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, with `_assign_requests_to_connections` linear in connections."""

    _swept_at = 0.0  # time.monotonic() of the last full sweep

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        # Closed, expired, and surplus idle connections leave the pool. Upstream looks
        # at every connection on every call (twice per request), and `has_expired` asks
        # each idle connection's socket whether the server closed it (a poll() system
        # call each: ~2.8 ms a call with 100 connections, bench/ack.py). Here the whole
        # pool is swept at most every `SWEEP_SECONDS`, when there are more connections
        # than may be kept alive, or when a new connection is needed and the pool is
        # full; a connection is always checked just before it is handed out, so none
        # is used expired or closed.
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_SECONDS:
            self._swept_at = now
            self._sweep(closing, expire=True)
        elif len(self._connections) > self._max_keepalive_connections:
            self._sweep(closing, expire=False)
        # Queued requests get a connection: a free one of their origin, a new one, or
        # one made in place of an idle one (as upstream), except that a connection
        # already given to a request that has not started yet is not given again.
        # (Upstream gives the same idle HTTP/1.1 connection to every request queued
        # in the meantime; all but one then fail with ConnectionNotAvailable and go
        # round the pool again: ~7 passes per request under a burst.)
        queued = [r for r in self._requests if r.is_queued()]
        if not queued:
            return closing
        taken = {id(r.connection) for r in self._requests if r.connection is not None}
        swept = False
        for pool_request in queued:
            origin = pool_request.request.url.origin
            chosen = self._available(origin, taken, closing)
            if chosen is None and len(self._connections) >= self._max_connections and not swept:
                self._sweep(closing, expire=False)  # closed ones give up their place
                swept = True
            if chosen is None and len(self._connections) < self._max_connections:
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            elif chosen is None:
                idle = next(
                    (c for c in self._connections if id(c) not in taken and c.is_idle()), None
                )
                if idle is None:
                    break  # the pool is full and busy: the rest stay queued until a release
                self._connections.remove(idle)
                closing.append(idle)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            pool_request.assign_to_connection(chosen)
            taken.add(id(chosen))
        return closing

    def _sweep(self, closing: list[httpcore.AsyncConnectionInterface], *, expire: bool) -> None:
        """Drop closed connections; close surplus idle ones (beyond the keep-alive
        limit) and, when `expire`, those the server closed or that idled too long."""
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif (expire and connection.has_expired()) or (
                connection.is_idle() and len(self._connections) > self._max_keepalive_connections
            ):
                self._connections.remove(connection)
                closing.append(connection)

    def _available(
        self,
        origin: httpcore.Origin,
        taken: set[int],
        closing: list[httpcore.AsyncConnectionInterface],
    ) -> httpcore.AsyncConnectionInterface | None:
        """A free connection to `origin` not given out yet; expired ones met on the way
        leave the pool (into `closing`)."""
        for connection in list(self._connections):
            if (
                id(connection) in taken
                or not connection.can_handle_request(origin)
                or not connection.is_available()
            ):
                continue
            if connection.has_expired():
                self._connections.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None


def lean_transport(limits: httpx.Limits, **options: Any) -> httpx.AsyncHTTPTransport:
    """`httpx.AsyncHTTPTransport(limits=limits, **options)` whose pool is a
    `LeanConnectionPool` (or httpx's own pool if httpcore's internals changed)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, **options)
    pool = getattr(transport, "_pool", None)
    lean = not options.get("http2") and all(hasattr(pool, a) for a in _EXPECTED)
    if type(pool) is httpcore.AsyncConnectionPool and lean:
        pool.__class__ = LeanConnectionPool
    else:
        log.debug("httpcore's pool is not the expected one; using it as it is")
    return transport
