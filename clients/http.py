"""The HTTP layer every API client sits on.

It owns what the three clients share: one `httpx.AsyncClient` per provider
(connection reuse, injectable for tests), mapping failures onto the error tree
of `clients.errors`, retrying only what is safe to retry, and reporting each
call (method, path, status, milliseconds; never headers or bodies) to a hook
that the bot wires to the audit log.

Retry rule (one tenacity policy, `RetryPolicy`): a GET is retried on 5xx (not
501), timeouts and dropped connections, with capped exponential backoff. Any
other method is retried only when the connection could not be established,
i.e. the request provably never reached the server; otherwise its failure says
the outcome is unknown. A streamed body is never sent twice.

Connections (`HttpApi`): two pools per provider, each of at most `max_connections`
(`[[providers]] max_connections`, 100 by default): one for requests made for a
person (inside `interactive()`: the commands, approvals), one for the rest
(tracker polls, watches, schedules, the background refresh of names). Two
pools are the simplest thing that keeps an answer from queueing behind polls:
no priority queue to get right, and a burst of polls can take every
connection of its own pool but none of the people's.

Bearer tokens are an `httpx.Auth` flow (`BearerAuth`): one token per client,
renewed before it expires, and renewed once more when the API answers 401.

Secrets: every token a token or sign-in endpoint answers is made known to the
process's redactor as soon as the answer is read (`token_answer`), and each
client makes its own credentials known when it is built, so an API that echoes
them back shows none of them (clients/errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from clients.errors import (
    ApiError,
    ConnectionFailed,
    NotConnected,
    Outcome,
    Timeout,
    UnusableAnswer,
    error_for_status,
)
from clients.pool import lean_transport
from core.mutations import before_mutation
from core.redaction import remember_answer
from core.turns import take_turn

log = logging.getLogger("graphops.http")

DEFAULT_MAX_CONNECTIONS = 100  # per pool and provider (`[[providers]] max_connections`)

_INTERACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "graphops_http_interactive", default=False
)


@contextlib.contextmanager
def interactive() -> Iterator[None]:
    """Requests sent within this block (and tasks it starts) are made for a person
    waiting for an answer: they use the interactive pool of each provider."""
    token = _INTERACTIVE.set(True)
    try:
        yield
    finally:
        _INTERACTIVE.reset(token)


def connection_pool(timeout: float, max_connections: int) -> httpx.AsyncClient:
    """One pool of at most `max_connections` connections (all kept alive when idle),
    `timeout` seconds per request (connecting: at most 5 s)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        transport=lean_transport(
            httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
            )
        ),
    )


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
    """How often and how patiently safe requests are retried: ``attempts`` tries in all,
    waiting ``base_delay * 2**(n-1)`` seconds (at most ``max_delay``) before try n+1."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0


ErrorParser = Callable[[httpx.Response], tuple[str, str | None, str | None]]


def parse_error_body(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """(message, code, nonce) from an error answer: `{"error"}`, `{"code","message"}` or text.

    Nothing is cut here: `ApiError` redacts, then cuts (a cut before redaction could
    leave half a secret that no longer matches it)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text or response.reason_phrase or "no reason given"), None, None
    if isinstance(body, dict):
        message = body.get("error") or body.get("message") or body.get("detail")
        code = body.get("code")
        nonce = body.get("nonce")
        if isinstance(message, dict):  # some APIs nest {"error": {"message": ...}}
            message = message.get("message")
        if message is None and nonce:
            message = "internal error"
        return (
            str(message or response.reason_phrase or "no reason given"),
            str(code) if code is not None else None,
            str(nonce) if nonce is not None else None,
        )
    return str(body), None, None


def token_answer(api: HttpApi, response: httpx.Response, method: str, path: str) -> Any:
    """The JSON body of a token or sign-in answer, whose tokens are made known to the
    redactor before anything else reads it (UnusableAnswer when it is not JSON)."""
    body = api.json_of(response, method, path, empty={})
    remember_answer(body, "token")
    return body


class HttpApi:
    """One provider's HTTP connection pools, error mapping, retries and call reporting.

    Without an injected `client`, two pools of `max_connections` each (module doc):
    `interactive_client` for requests inside `interactive()`, `client` for the rest.
    An injected client (tests, dry runs) serves both. ValueError if
    `max_connections` < 1 (bot/config.py checks the setting first).
    """

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
        kind: str = "",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.provider = provider
        self.kind = kind  # the provider kind (`graphenedb`...), named in every error
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._own_client = client is None
        self.max_connections = max_connections
        self.client = client or connection_pool(timeout, max_connections)
        self.interactive_client = client or connection_pool(timeout, max_connections)
        self.retry = retry or RetryPolicy()
        self.on_call = on_call
        self.parse_error = parse_error

    async def aclose(self) -> None:
        """Close the connection pools if this object created them."""
        if self._own_client:
            await self.client.aclose()
            await self.interactive_client.aclose()

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
            kind=self.kind,
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
                kind=self.kind,
            ) from None

    def _retrying(self) -> AsyncRetrying:
        """The retry policy: ``retry.attempts`` tries, capped exponential backoff, and only
        what ``_Failure.retryable`` allows."""
        return AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=wait_exponential(multiplier=self.retry.base_delay, max=self.retry.max_delay),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Failure) and exc.retryable),
            reraise=True,
        )

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
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send one request; return the 2xx response or raise an ApiError.

        `retry` defaults to True for GET: it is re-sent on 5xx (not 501), timeouts
        and broken connections. Any request is re-sent when no connection could be
        made, except a streamed `content`, which is never sent twice. `auth` signs
        the request (see `BearerAuth`). A request that may change something (not GET
        or HEAD, and not marked `retry=True`, safe to repeat) is first announced to
        `core.mutations.before_mutation`, which may refuse it.
        """
        method = method.upper()
        may_retry = (method == "GET") if retry is None else retry
        if method not in ("GET", "HEAD") and retry is not True:
            await before_mutation(self.provider, method, path)  # may refuse: then nothing is sent
        try:
            async for attempt in self._retrying():
                with attempt:
                    return await self._send_once(
                        method,
                        path,
                        may_retry=may_retry,
                        replayable=content is None,
                        auth=auth,
                        headers=headers,
                        json=json,
                        data=data,
                        content=content,
                        params=params,
                    )
        except _Failure as failure:
            raise failure.error from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        may_retry: bool,
        replayable: bool,
        auth: httpx.Auth | None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP exchange; a failure is a `_Failure` saying whether it may be retried."""
        started = time.perf_counter()
        signed: Any = auth if auth is not None else httpx.USE_CLIENT_DEFAULT
        pool = self.interactive_client if _INTERACTIVE.get() else self.client
        try:
            response = await pool.request(method, self.base_url + path, auth=signed, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached the server: safe to try again for any method.
            self._report(method, path, None, started)
            error: ApiError = NotConnected(
                f"could not connect to {self.provider} ({type(exc).__name__})",
                method=method,
                path=path,
                provider=self.provider,
                kind=self.kind,
            )
            raise _Failure(error, retryable=replayable) from None
        except httpx.TimeoutException:
            self._report(method, path, None, started)
            error = Timeout(
                f"no answer from {self.provider} in time",
                method=method,
                path=path,
                provider=self.provider,
                kind=self.kind,
                outcome="not done" if method == "GET" else "unknown",
            )
            raise _Failure(error, retryable=may_retry and replayable) from None
        except httpx.TransportError as exc:
            self._report(method, path, None, started)
            error = ConnectionFailed(
                f"the connection to {self.provider} broke ({type(exc).__name__})",
                method=method,
                path=path,
                provider=self.provider,
                kind=self.kind,
                outcome="not done" if method == "GET" else "unknown",
            )
            raise _Failure(error, retryable=may_retry and replayable) from None
        self._report(method, path, response.status_code, started)  # its time: the API's alone
        await take_turn()  # what the answer starts (models, audit, reply) waits for acks
        if response.is_success:
            return response
        transient = response.status_code >= 500 and response.status_code != 501
        error = self._error(response, method, path)
        raise _Failure(error, retryable=transient and may_retry and replayable)

    def report_rejected(self, request: httpx.Request, response: httpx.Response) -> None:
        """Report a 401 that an auth flow answered by signing again (it is not raised)."""
        path = request.url.path
        if path.startswith(self._base_path):
            path = path[len(self._base_path) :] or "/"
        self._report(request.method, path, response.status_code, time.perf_counter())


class _Failure(Exception):
    """One failed attempt: the ApiError to raise, and whether trying again is safe."""

    def __init__(self, error: ApiError, *, retryable: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable


TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]


class _Tokens:
    """The bearer token of one client, shared by its concurrent callers."""

    REFRESH_MARGIN_SECONDS = 60.0

    def __init__(self, fetch: TokenFetcher, clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = asyncio.Lock()
        self.current: str | None = None
        self._expires = 0.0
        self.fetched = 0

    def fresh(self) -> str | None:
        """The current token if it is not about to expire (no I/O), else None."""
        return self.current if self.current is not None and self._clock() < self._expires else None

    async def token(self, *, rejected: str | None = None) -> str:
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


class BearerAuth(httpx.Auth):
    """An ``httpx.Auth`` flow: sign with the client's one bearer token, renewed shortly
    before it expires; on 401, renew once (unless another caller already did) and
    sign again.

    ``fetch`` signs in and returns (token, lifetime in seconds); one caller at a
    time fetches. :meth:`sign_only` is the same token without the second try, for
    a streamed upload, whose body cannot be sent twice. ``on_rejected`` is told of
    each 401 that was answered by signing again (for the call records).
    """

    REFRESH_MARGIN_SECONDS = _Tokens.REFRESH_MARGIN_SECONDS

    def __init__(
        self,
        fetch: TokenFetcher,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_rejected: Callable[[httpx.Request, httpx.Response], None] | None = None,
    ) -> None:
        self._tokens = _Tokens(fetch, clock)
        self._resend = True
        self.on_rejected = on_rejected

    @property
    def current(self) -> str | None:
        """The token in use (never log it)."""
        return self._tokens.current

    @property
    def fetched(self) -> int:
        """How many times a token was fetched."""
        return self._tokens.fetched

    async def token(self, *, rejected: str | None = None) -> str:
        """A valid token; pass the one the API just rejected to force a renewal."""
        return await self._tokens.token(rejected=rejected)

    def sign_only(self) -> BearerAuth:
        """This auth without the second try after a 401 (same token)."""
        twin = copy.copy(self)
        twin._resend = False
        return twin

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # The token is normally fetched before the request (`BearerClient.signed`), so
        # the flow does not await before its first yield.
        token = self._tokens.fresh() or await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or not self._resend:
            return
        if self.on_rejected is not None:
            self.on_rejected(request, response)
        token = await self.token(rejected=token)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class ApiClient:
    """What every provider client shares: its HttpApi (pool, error mapping, call records)."""

    api: HttpApi

    @property
    def provider(self) -> str:
        """The provider's name in graphops.toml."""
        return self.api.provider

    @property
    def kind(self) -> str:
        """The provider's kind (`graphenedb`, `graphenedb-v1`, `typedb`)."""
        return self.api.kind

    async def aclose(self) -> None:
        """Close the connection pool (if this client created it)."""
        await self.api.aclose()


class BearerClient(ApiClient):
    """A client that signs in for a bearer token (`auth`)."""

    auth: BearerAuth

    async def signed(
        self, method: str, path: str, *, content: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """``api.request`` signed with the token; a streamed ``content`` is signed only."""
        await self.auth.token()  # sign in (or renew) first, outside the httpx auth flow
        auth = self.auth if content is None else self.auth.sign_only()
        return await self.api.request(method, path, content=content, auth=auth, **kwargs)

    @property
    def tokens_fetched(self) -> int:
        """How many times this client has signed in."""
        return self.auth.fetched
