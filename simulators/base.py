"""Reusable pieces for the API simulators: a real aiohttp server on loopback that
records every request and injects faults on demand.

A simulator subclasses :class:`SimulatorServer`, returns its routes from
:meth:`SimulatorServer.routes`, and may override :meth:`SimulatorServer.before_handler`
(authentication, lazy state advance), :meth:`SimulatorServer.state_dump`,
:meth:`SimulatorServer.expire_tokens`, :meth:`SimulatorServer.fault_body` and
:meth:`SimulatorServer.apply_extra_faults`.

Handlers signal errors by raising :class:`SimulatedError`; every error, including
aiohttp's own 404/405 for unknown routes, is answered as ``{"error": "<reason>"}`` JSON.

Shapes: where no document gives a response's shape, a simulator serves its most
plausible guess by default and can serve variants of it instead. Each simulator
lists its variants in ``SHAPES`` (name -> what changes); ``shapes=`` (and
``graphops simulate --shapes NAME[,NAME]``) picks some; :meth:`SimulatorServer.shaped`
tells a handler whether one is on, and :meth:`SimulatorServer.collection` answers a
list bare or wrapped (variant ``lists-wrapped``).

Echo (``fail_next(..., echo=True)``): a hostile or careless server that repeats what
it was sent in its error answer. In the rule's ``text`` or ``body`` (any string in
it), ``{body}`` becomes the raw request body, ``{token}`` the bearer token of its
``Authorization`` header, ``{header:NAME}`` a request header and ``{field:NAME}`` a
field of its form or JSON body (a posted ``client_secret``, a ``password``). Real
servers have been seen echoing the posted form in a 401 and the request in a 500;
which parts and in which shape is a guess, so tests try several.

Fault injection order for every non-admin request: ``latency`` sleep, then the first
matching ``fail_next`` rule (consumed), else a random drop (``drop_rate``), else a
random error (``error_rate``); one seeded ``random.Random`` draws both. With
``drop_after_effect`` a random drop of a mutating (non-GET/HEAD) request happens after
the handler ran; GET requests are always dropped before handling. A dropped request
is recorded with status 0 and the client sees the connection close with no answer.

Admin endpoints (never recorded, never faulted, no authentication):

- ``GET /_sim/requests``: the request log as a JSON list
- ``POST /_sim/reset-log``: clear the log, answers ``{"cleared": N}``
- ``POST /_sim/faults``: JSON object setting any of ``latency, error_rate,
  error_status, drop_rate, drop_after_effect, seed``, plus ``"fail_next": [rule...]``
  (rule keys as :meth:`Faults.fail_next`), ``"reset": true`` (reset faults first) and
  simulator-specific keys (see :meth:`SimulatorServer.apply_extra_faults`); answers the
  current faults; unknown keys or bad values give 400
- ``POST /_sim/expire-tokens``: invalidate every issued token, answers ``{"expired": N}``
- ``GET /_sim/state``: :meth:`SimulatorServer.state_dump`

``RecordedRequest.at`` is read from the simulator's ``clock``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from aiohttp import web

SECRET_FIELDS = frozenset({"client_secret", "password", "api_key"})
#: request headers never recorded with their value
SECRET_HEADERS = frozenset({"authorization", "api_key", "api-key", "cookie", "x-api-key"})
REDACTED = "[REDACTED]"
ADMIN_PREFIX = "/_sim/"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: request key where a handler stores the byte count of a streamed upload (for the log)
UPLOAD_BYTES = web.RequestKey("sim_upload_bytes", int)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimulatedError(Exception):
    """Raised by handlers to answer ``{"error": message}`` with ``status``.

    (Not ``clients.errors.ApiError``: that one is what a client raises.)
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: the variant every simulator with collections understands
LISTS_WRAPPED = "lists-wrapped"


def check_shapes(known: Mapping[str, str], wanted: Iterable[str], who: str) -> frozenset[str]:
    """``wanted`` as a set, or ValueError naming the unknown variant and the known ones."""
    chosen = frozenset(name.strip() for name in wanted if name.strip())
    unknown = sorted(chosen - set(known))
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise ValueError(f"{who} has no shape variant {unknown[0]!r} (it has: {names})")
    return chosen


def json_error(status: int, message: str) -> web.Response:
    """Build the uniform error answer ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)


class ManualClock:
    """A controllable clock for tests: ``clock()`` returns the current time,
    ``advance(seconds)`` moves it forward."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


@dataclass
class RecordedRequest:
    """One request as seen by the simulator. ``status`` is the status sent (0 when the
    connection was dropped); ``body`` is parsed JSON, a redacted dict of form fields,
    ``"<multipart N bytes>"``, raw text, or None when empty; ``headers`` are the
    request headers (lower-case names) with credentials redacted."""

    method: str
    path: str
    query: str
    status: int
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FailRule:
    """A targeted fault: the next ``times`` requests matching ``method`` and
    ``path_regex`` (``re.search``) get ``status`` and ``body`` (any JSON value) or
    ``text`` (a raw, non-JSON body), or are dropped. With ``echo`` the strings of
    ``body``/``text`` repeat parts of the request (see the module docstring)."""

    method: str
    path_regex: str
    status: int = 500
    times: int = 1
    body: Any = None
    drop: bool = False
    after_effect: bool = False
    text: str | None = None
    echo: bool = False

    def matches(self, method: str, path: str) -> bool:
        """True if this rule still applies to ``method path``."""
        return (
            self.times > 0
            and (self.method == "*" or self.method.upper() == method.upper())
            and re.search(self.path_regex, path) is not None
        )


@dataclass
class Faults:
    """Fault-injection settings of a simulator; see the module docstring for order."""

    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    drop_after_effect: bool = False
    seed: int = 0
    rules: list[FailRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        times: int = 1,
        body: Any = None,
        drop: bool = False,
        after_effect: bool = False,
        text: str | None = None,
        echo: bool = False,
    ) -> FailRule:
        """Add a targeted rule; rules are consumed in the order they were added.
        ``method`` may be ``"*"``."""
        re.compile(path_regex)  # fail early on a bad pattern
        rule = FailRule(method, path_regex, status, times, body, drop, after_effect, text, echo)
        self.rules.append(rule)
        return rule

    def take_rule(self, method: str, path: str) -> FailRule | None:
        """Consume one use of the first rule matching ``method path``, if any."""
        for rule in self.rules:
            if rule.matches(method, path):
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def reset(self) -> None:
        """Back to no faults, with the random generator reseeded."""
        for f in fields(self):
            if f.name not in ("rules", "rng", "seed"):
                setattr(self, f.name, f.default)
        self.rules.clear()
        self.rng.seed(self.seed)

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return {
            "latency": self.latency,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "drop_rate": self.drop_rate,
            "drop_after_effect": self.drop_after_effect,
            "seed": self.seed,
            "fail_next": [asdict(r) for r in self.rules],
        }


_FAULT_SCALARS: dict[str, tuple[type, ...]] = {
    "latency": (int, float),
    "error_rate": (int, float),
    "error_status": (int,),
    "drop_rate": (int, float),
    "drop_after_effect": (bool,),
    "seed": (int,),
}


def _redact(value: Any) -> Any:
    """Replace secret fields in (nested) dicts by ``[REDACTED]``."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


_ECHO = re.compile(r"\{(body|token|header:[\w-]+|field:[\w-]+)\}")


@dataclass(frozen=True)
class _Echo:
    """What an echoing fault repeats of a request (see the module docstring)."""

    body: str
    headers: Mapping[str, str]
    fields: Mapping[str, str]

    @classmethod
    async def of(cls, request: web.Request) -> _Echo:
        raw = (await request.read()).decode("utf-8", "replace")  # read once, kept by aiohttp
        fields: dict[str, str] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            fields = {k: str(v) for k, v in (await request.post()).items()}
        else:
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                fields = {str(k): str(v) for k, v in parsed.items()}
        headers = {name.lower(): value for name, value in request.headers.items()}
        return cls(raw, headers, fields)

    def _part(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "body":
            return self.body
        if name == "token":
            return self.headers.get("authorization", "").partition(" ")[2]
        kind, _, key = name.partition(":")
        source = self.headers if kind == "header" else self.fields
        return source.get(key.lower() if kind == "header" else key, "")

    def fill(self, template: Any) -> Any:
        """``template`` (a string or JSON value) with every placeholder replaced."""
        if isinstance(template, str):
            return _ECHO.sub(self._part, template)
        if isinstance(template, dict):
            return {key: self.fill(value) for key, value in template.items()}
        if isinstance(template, list):
            return [self.fill(value) for value in template]
        return template


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimulatorServer:
    """Base of the API simulators: a real HTTP server on loopback with a request log,
    fault injection and ``/_sim/`` admin endpoints.

    Attributes: ``requests`` (every non-admin request), ``faults`` (:class:`Faults`),
    ``clock`` (callable returning seconds, default ``time.monotonic``; replace it
    with a :class:`ManualClock` in tests), ``base_url`` (set by :meth:`start`).
    """

    #: path of the token endpoint, excluded from :meth:`mutating_requests`
    token_path: str | None = None
    #: shape variants this simulator can serve instead of its default: name -> what changes
    SHAPES: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, seed: int = 0, shapes: Iterable[str] = ()) -> None:
        self.shapes = check_shapes(self.SHAPES, shapes, type(self).__name__)
        self.requests: list[RecordedRequest] = []
        self.faults = Faults(seed=seed)
        self.clock: Callable[[], float] = time.monotonic
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ---- shapes -----------------------------------------------------------------

    def shaped(self, variant: str) -> bool:
        """True when the shape variant ``variant`` is on."""
        return variant in self.shapes

    def collection(self, key: str, items: list[Any], status: int = 200) -> web.Response:
        """A list answer: bare by default, ``{key: [...]}`` with ``lists-wrapped``."""
        body: Any = {key: items} if self.shaped(LISTS_WRAPPED) else items
        return web.json_response(body, status=status)

    # ---- hooks for subclasses -------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The simulator's API routes."""
        return []

    async def before_handler(self, request: web.Request) -> None:
        """Called before each non-admin handler; raise :class:`SimulatedError` to refuse."""

    def state_dump(self) -> dict[str, Any]:
        """Everything worth showing at ``GET /_sim/state``."""
        return {}

    def expire_tokens(self) -> int:
        """Invalidate every issued token; returns how many were invalidated."""
        return 0

    def fault_body(self, status: int) -> dict[str, Any]:
        """Body of an injected error (override to mimic the API's 500 bodies)."""
        return {"error": "simulated fault"}

    def apply_extra_faults(self, key: str, value: Any) -> bool:
        """Handle a simulator-specific key of ``POST /_sim/faults``; return False if
        the key is unknown. Raise ValueError/TypeError/KeyError on a bad value.

        ``fail_next_operation`` (an object, or a list of them, of that method's
        keyword arguments) works for every simulator that runs operations.
        """
        fail = getattr(self, "fail_next_operation", None)
        if key != "fail_next_operation" or fail is None:
            return False
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                raise TypeError("fail_next_operation must be an object")
            fail(**item)
        return True

    # ---- lifecycle ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    def make_app(self) -> web.Application:
        """Build the aiohttp application (admin routes + :meth:`routes`)."""
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(
            [
                web.get("/_sim/requests", self._admin_requests),
                web.post("/_sim/reset-log", self._admin_reset_log),
                web.post("/_sim/faults", self._admin_faults),
                web.post("/_sim/expire-tokens", self._admin_expire_tokens),
                web.get("/_sim/state", self._admin_state),
            ]
        )
        app.add_routes(self.routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening on ``host:port`` (loopback only; port 0 picks a free port)
        and return the base URL."""
        if not _is_loopback(host):
            raise ValueError(f"simulators listen on loopback only, not {host!r}")
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        addr = runner.addresses[0]
        shown = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        self._base_url = f"http://{shown}:{addr[1]}"
        return self._base_url

    async def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- request log ----------------------------------------------------------

    def requests_to(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by method and/or path pattern (``re.search``)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_regex is None or re.search(path_regex, r.path))
        ]

    def mutating_requests(self) -> list[RecordedRequest]:
        """Recorded non-GET/HEAD requests, excluding the token endpoint."""
        return [
            r for r in self.requests if r.method not in READ_METHODS and r.path != self.token_path
        ]

    # ---- middleware -------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await self._call(request, handler, hooks=False)
        try:
            body = await self._record_body(request)
        except web.HTTPException:  # e.g. body too large; the handler will answer
            body = "<unreadable body>"
        faults = self.faults
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        mutating = request.method not in READ_METHODS
        rule = faults.take_rule(request.method, request.path)
        if rule is not None:
            if rule.after_effect:
                await self._call(request, handler)
            if rule.drop:
                return self._drop(request, body)
            answer = rule.body if rule.body is not None else self.fault_body(rule.status)
            if rule.echo:
                echo = await _Echo.of(request)
                answer = echo.fill(rule.text if rule.text is not None else answer)
            elif rule.text is not None:
                answer = rule.text
            if isinstance(answer, str):
                resp = web.Response(text=answer, status=rule.status)
            else:
                resp = web.json_response(answer, status=rule.status)
            self._record(request, resp.status, body)
            return resp
        if faults.drop_rate > 0 and faults.rng.random() < faults.drop_rate:
            if faults.drop_after_effect and mutating:
                await self._call(request, handler)
            return self._drop(request, body)
        if faults.error_rate > 0 and faults.rng.random() < faults.error_rate:
            status = faults.error_status
            self._record(request, status, body)
            return web.json_response(self.fault_body(status), status=status)
        answer = await self._call(request, handler)
        self._record(request, answer.status, body)
        return answer

    async def _call(
        self, request: web.Request, handler: Handler, hooks: bool = True
    ) -> web.StreamResponse:
        """Run the handler, turning errors into ``{"error": ...}`` JSON answers."""
        try:
            if hooks:
                await self.before_handler(request)
            return await handler(request)
        except SimulatedError as exc:
            return json_error(exc.status, exc.message)
        except web.HTTPException as exc:
            if exc.status >= 400:
                return json_error(exc.status, exc.reason.lower())
            raise

    def _drop(self, request: web.Request, body: Any) -> web.Response:
        """Close the connection without any answer. The returned response is never
        written: aiohttp treats the write failure as a client disconnection."""
        self._record(request, 0, body)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=499)

    async def _record_body(self, request: web.Request) -> Any:
        """Parse (and redact) the request body for the log without consuming
        multipart uploads, which handlers stream."""
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            return None  # filled in by _record from the handler's byte count
        if not request.can_read_body:
            return None
        if ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            return _redact({k: str(v) for k, v in form.items()})
        raw = await request.read()
        if not raw:
            return None
        try:
            return _redact(json.loads(raw))
        except ValueError:
            return raw.decode("utf-8", "replace")[:1000]

    def _record(self, request: web.Request, status: int, body: Any) -> None:
        if request.content_type.startswith("multipart/"):
            size = request.get(UPLOAD_BYTES)
            if size is None:
                size = request.content_length or 0
            body = f"<multipart {size} bytes>"
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                status=status,
                body=body,
                at=self.clock(),
                headers={
                    name.lower(): REDACTED if name.lower() in SECRET_HEADERS else value
                    for name, value in request.headers.items()
                },
            )
        )

    # ---- admin endpoints --------------------------------------------------------

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.requests])

    async def _admin_reset_log(self, request: web.Request) -> web.Response:
        n = len(self.requests)
        self.requests.clear()
        return web.json_response({"cleared": n})

    async def _admin_expire_tokens(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.expire_tokens()})

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state_dump())

    async def _admin_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            raise SimulatedError(400, "invalid JSON body") from None
        if not isinstance(data, dict):
            raise SimulatedError(400, "JSON body must be an object")
        try:
            self.configure_faults(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise SimulatedError(400, f"bad faults: {exc}") from None
        return web.json_response(self.faults.to_json())

    def configure_faults(self, data: dict[str, Any]) -> None:
        """Apply a ``POST /_sim/faults`` body (see the module docstring)."""
        if data.get("reset"):
            self.faults.reset()
        for key, value in data.items():
            if key == "reset":
                continue
            if key in _FAULT_SCALARS:
                kinds = _FAULT_SCALARS[key]
                if isinstance(value, bool) and bool not in kinds:
                    raise TypeError(f"{key} must be a number")
                if not isinstance(value, kinds):
                    raise TypeError(f"{key} has the wrong type")
                setattr(self.faults, key, value)
                if key == "seed":
                    self.faults.rng.seed(self.faults.seed)
            elif key == "fail_next":
                rules = value if isinstance(value, list) else [value]
                for rule in rules:
                    if not isinstance(rule, dict):
                        raise TypeError("fail_next rules must be objects")
                    self.faults.fail_next(**rule)
            elif not self.apply_extra_faults(key, value):
                raise KeyError(f"unknown key {key!r}")


async def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM (used by `graphops simulate` and the module mains)."""
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
