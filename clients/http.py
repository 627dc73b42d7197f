"""The HTTP layer every API client sits on.

It owns what the three clients share: one `httpx.AsyncClient` per provider
(connection reuse, injectable for tests), mapping failures onto the error tree
of `clients.errors`, retrying only what is safe to retry, and reporting each
call (method, path, status, milliseconds; never headers or bodies) to a hook
that the bot wires to the audit log.

Retry rule: a GET is retried on 5xx (not 501), timeouts and dropped
connections, with capped exponential backoff. Any other method is retried only
when the connection could not be established, i.e. the request provably never
reached the server; otherwise its failure says the outcome is unknown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from clients.errors import (
    ApiError,
    ConnectionFailed,
    Outcome,
    Timeout,
    Unauthorized,
    UnusableAnswer,
    error_for_status,
)

log = logging.getLogger("graphops.http")


@dataclass(frozen=True)
class CallRecord:
    """One HTTP call as the audit log sees it."""

    provider: str
    method: str
    path: str
    status: int | None
    ms: float


CallHook = Callable[[CallRecord], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently safe requests are retried."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


ErrorParser = Callable[[httpx.Response], tuple[str, str | None, str | None]]


def parse_error_body(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """(message, code, nonce) from an error answer: `{"error"}`, `{"code","message"}` or text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] or response.reason_phrase or "no reason given"), None, None
    if isinstance(body, dict):
        message = body.get("error") or body.get("message") or body.get("detail")
        code = body.get("code")
        nonce = body.get("nonce")
        if isinstance(message, dict):  # some APIs nest {"error": {"message": ...}}
            message = message.get("message")
        if message is None and nonce:
            message = "internal error"
        return (
            str(message or response.reason_phrase or "no reason given")[:300],
            str(code) if code is not None else None,
            str(nonce) if nonce is not None else None,
        )
    return str(body)[:300], None, None


class HttpApi:
    """One provider's HTTP connection pool, error mapping, retries and call reporting."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
        parse_error: ErrorParser = parse_error_body,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self.retry = retry or RetryPolicy()
        self.on_call = on_call
        self.parse_error = parse_error

    async def aclose(self) -> None:
        """Close the connection pool if this object created it."""
        if self._own_client:
            await self.client.aclose()

    def _report(self, method: str, path: str, status: int | None, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        log.debug("%s %s %s -> %s in %.0f ms", self.provider, method, path, status, ms)
        if self.on_call is not None:
            try:
                self.on_call(CallRecord(self.provider, method, path, status, round(ms, 1)))
            except Exception:  # the audit hook must never break a call
                log.exception("call hook failed for %s %s", method, path)

    def _error(self, response: httpx.Response, method: str, path: str) -> ApiError:
        message, code, nonce = self.parse_error(response)
        cls = error_for_status(response.status_code)
        # A mutating request that got 500/502/504 may have been acted on upstream.
        unsure = method != "GET" and response.status_code in (500, 502, 504)
        outcome: Outcome = "unknown" if unsure else "not done"
        return cls(
            message,
            status=response.status_code,
            method=method,
            path=path,
            provider=self.provider,
            code=code,
            nonce=nonce,
            outcome=outcome,
        )

    def json_of(self, response: httpx.Response, method: str, path: str, empty: Any = None) -> Any:
        """The JSON body of a 2xx answer (`empty` if none); UnusableAnswer if not JSON."""
        if response.status_code == 204 or not response.content.strip():
            return empty
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise UnusableAnswer(
                "the answer was not JSON",
                status=response.status_code,
                method=method,
                path=path,
                provider=self.provider,
            ) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: Any = None,
        params: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        """Send one request; return the 2xx response or raise an ApiError.

        `retry` defaults to True for GET. Streaming `content` is never retried
        once sending has started.
        """
        method = method.upper()
        may_retry = (method == "GET") if retry is None else retry
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self.client.request(
                    method,
                    url,
                    headers=headers,
                    json=json,
                    data=data,
                    content=content,
                    params=params,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the server: safe to try again for any method.
                self._report(method, path, None, started)
                if attempt < self.retry.attempts and content is None:
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue
                raise ConnectionFailed(
                    f"could not connect to {self.provider} ({type(exc).__name__})",
                    method=method,
                    path=path,
                    provider=self.provider,
                ) from None
            except httpx.TimeoutException:
                self._report(method, path, None, started)
                if may_retry and attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue
                raise Timeout(
                    f"no answer from {self.provider} in time",
                    method=method,
                    path=path,
                    provider=self.provider,
                    outcome="not done" if method == "GET" else "unknown",
                ) from None
            except httpx.TransportError as exc:
                self._report(method, path, None, started)
                if may_retry and attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue
                raise ConnectionFailed(
                    f"the connection to {self.provider} broke ({type(exc).__name__})",
                    method=method,
                    path=path,
                    provider=self.provider,
                    outcome="not done" if method == "GET" else "unknown",
                ) from None
            self._report(method, path, response.status_code, started)
            if response.is_success:
                return response
            transient = response.status_code >= 500 and response.status_code != 501
            if transient and may_retry and attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            raise self._error(response, method, path)


TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]


class BearerAuth:
    """A bearer token shared by every concurrent caller of one client.

    `fetch` signs in and returns (token, lifetime in seconds). The token is
    fetched by one caller at a time, renewed shortly before it expires, and
    renewed once when the API answers 401 to it (unless another caller has
    replaced it meanwhile).
    """

    REFRESH_MARGIN_SECONDS = 60.0

    def __init__(self, fetch: TokenFetcher, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._lock = asyncio.Lock()
        self.current: str | None = None
        self._expires = 0.0
        self.fetched = 0

    async def token(self, *, rejected: str | None = None) -> str:
        """A valid token; pass the one the API just rejected to force a renewal."""
        async with self._lock:
            fresh = self.current is not None and self._clock() < self._expires
            if rejected is not None and self.current == rejected:
                fresh = False  # nobody replaced the rejected token yet
            if not fresh:
                token, lifetime = await self._fetch()
                margin = min(self.REFRESH_MARGIN_SECONDS, lifetime / 10)
                self.current = token
                self._expires = self._clock() + lifetime - margin
                self.fetched += 1
            assert self.current is not None
            return self.current

    async def request(
        self,
        api: HttpApi,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`api.request` with the token; on 401, one renewal and one more try.

        A streamed upload is not tried again: its body was consumed.
        """
        token = await self.token()
        sent = {**(headers or {}), "Authorization": f"Bearer {token}"}
        try:
            return await api.request(method, path, headers=sent, **kwargs)
        except Unauthorized:
            if kwargs.get("content") is not None:
                raise
            token = await self.token(rejected=token)
            sent["Authorization"] = f"Bearer {token}"
            return await api.request(method, path, headers=sent, **kwargs)


class ApiClient:
    """What every provider client shares: its HttpApi (pool, error mapping, call records)."""

    api: HttpApi

    @property
    def provider(self) -> str:
        """The provider's name in graphops.toml."""
        return self.api.provider

    async def aclose(self) -> None:
        """Close the connection pool (if this client created it)."""
        await self.api.aclose()


class BearerClient(ApiClient):
    """A client that signs in for a bearer token (`auth`)."""

    auth: BearerAuth

    @property
    def tokens_fetched(self) -> int:
        """How many times this client has signed in."""
        return self.auth.fetched
