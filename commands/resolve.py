"""Names to ids: people type `orders-db`, the APIs want ids.

Names resolve only within the environments bound to the channel with enough
role for the verb, so a name in an environment the channel may not touch is
never found, and no request is sent when the channel has no such binding.

Ids are stable, so the lists that map names to ids (a provider's environments,
an environment's databases) are cached for long (`[bot] name_cache_seconds`,
6 hours by default) and kept right by:

- the bot's own changes: a verb that adds or removes a database (create,
  terminate, clone, restore ... as, import, dr, create-db, delete-db) drops the
  listings of the environments it touched (`forget`);
- a 404 from the API on a command whose ids came from the cache: the lists of
  that provider are dropped and the command is resolved and run once more
  (`once_more_on_404`; only when the first attempt changed nothing: no
  successful non-GET request);
- a name not found (or found twice) in cached listings: those listings are
  fetched again before answering, so an answer never rests on stale names;
- a background refresh (`start_refresh`, every `[bot] name_refresh_seconds`).

The listings of several environments are fetched concurrently (at most
`concurrency` requests at once); `env=` looks only in that environment. Callers
that show state to people (`list`, `dbs`) ask for `fresh=True` listings (which
also refresh the cache); the cache is only ever used to find ids.

One failing provider never breaks the others: when the caller passes an
`unreachable` dict, a provider (or one environment) whose listing fails is
recorded there with its error (`{"console-eu": ServerError(...)}`) and skipped,
and the look-up goes on with the others. With `env=`, a provider none of whose
bindings can name that environment is not asked at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clients.errors import (
    ApiError,
    ConnectionFailed,
    NotFound,
    ServerError,
    Timeout,
    UnusableAnswer,
)
from core.audit_context import polling
from core.errors import UserError
from core.kinds import ProviderKind
from core.provider import EnvironmentInfo, Provider
from core.turns import take_turn
from permissions.model import WILDCARD, Binding, ChannelPolicy, environment_matches
from permissions.roles import Role

log = logging.getLogger("graphops.resolve")

DEFAULT_TTL_SECONDS = 6 * 3600.0
DEFAULT_CONCURRENCY = 8
T = TypeVar("T")


class NameNotFound(UserError):
    """No database with that name in the environments searched."""


@dataclass(frozen=True)
class Scope:
    """One environment of one provider that a command may look in."""

    provider: Provider
    environment: EnvironmentInfo

    @property
    def label(self) -> str:
        """`staging/console`, or the provider's name for one-environment providers."""
        if self.environment.name == self.provider.name:  # one-environment providers (v1, TypeDB)
            return self.provider.name
        return f"{self.environment.name}/{self.provider.name}"


@dataclass(frozen=True)
class Found:
    """A database found by name, and where."""

    scope: Scope
    database: Any  # clients' Database: .id, .name, ...


@dataclass
class Attempt:
    """What one run of a command did that decides whether it may run again after a 404:
    ids served from the cache (`cached`), a change the API accepted (`wrote`)."""

    cached: bool = False
    wrote: bool = False


_ATTEMPT: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar(
    "graphops_resolve_attempt", default=None
)
_CACHE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "graphops_resolve_cache_only", default=False
)


def note_call(method: str, status: int | None) -> None:
    """Tell the running attempt about one API call (wired to every client's call hook):
    a 2xx answer to anything but GET means the attempt changed something."""
    attempt = _ATTEMPT.get()
    if attempt is not None and method != "GET" and status is not None and status < 300:
        attempt.wrote = True


def why_unreachable(exc: ApiError) -> str:
    """A few words on why a provider's listing failed: `unreachable (500)`,
    `unreachable (timed out)`, `refused (401)`, `unusable answer`."""
    if isinstance(exc, ServerError) or (exc.status or 0) >= 500:
        return f"unreachable ({exc.status or 'server error'})"
    if isinstance(exc, Timeout):
        return "unreachable (timed out)"
    if isinstance(exc, ConnectionFailed):
        return "unreachable (no connection)"
    if isinstance(exc, UnusableAnswer):
        return "unusable answer"
    return f"refused ({exc.status})" if exc.status else "failed"


def nothing_answered(failed: dict[str, ApiError]) -> Exception:
    """The error when nothing a command needed answered: the one ApiError itself (the
    pipeline describes it), or for several, a UserError describing each."""
    if len(failed) == 1:
        return next(iter(failed.values()))
    return UserError(
        "nothing could be looked at: "
        + "; ".join(
            exc.describe() if where == exc.provider else f"{where}: {exc.describe()}"
            for where, exc in sorted(failed.items())
        )
    )


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def eligible_bindings(
    policy: ChannelPolicy, role: Role, providers: list[Provider]
) -> list[Binding]:
    """The channel's bindings on these providers whose role reaches `role` (no I/O)."""
    names = {provider.name for provider in providers}
    return [b for b in policy.bindings if b.provider in names and b.role >= role]


@dataclass
class _Entry:
    fetched_at: float
    items: list[Any] = field(default_factory=list)


class Resolver:
    """Cached look-ups of environments and databases, per provider (see the module doc).

    `ttl_seconds`: how long a list is trusted for ids (0: never cached);
    `concurrency`: listing requests in flight at once for one look-up;
    `clock`: seconds, monotonic (injectable for tests and benches).
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        concurrency: int = DEFAULT_CONCURRENCY,
    ):
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._homes: dict[str, set[tuple[str, str]]] = {}  # `homes`: word -> cache keys
        self._words: dict[tuple[str, str], set[str]] = {}  # cache key -> its words
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._fetchers: dict[tuple[str, str], Callable[[], Awaitable[Any]]] = {}
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._refresher: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0

    # -- the cache ----------------------------------------------------------------------

    async def _cached(
        self, key: tuple[str, str], fetch: Callable[[], Awaitable[Any]], fresh: bool = False
    ) -> list[Any]:
        return (await self._lookup(key, fetch, fresh))[0]

    async def _lookup(
        self, key: tuple[str, str], fetch: Callable[[], Awaitable[Any]], fresh: bool
    ) -> tuple[list[Any], bool]:
        """(the list, whether it came from the cache)."""
        self._fetchers[key] = fetch
        entry = self._cache.get(key)
        if _CACHE_ONLY.get():  # no I/O: what is cached, however old, or nothing
            return (list(entry.items) if entry is not None else []), True
        if not fresh and entry is not None and self.clock() - entry.fetched_at < self.ttl:
            self.hits += 1
            attempt = _ATTEMPT.get()
            if attempt is not None:
                attempt.cached = True
            return list(entry.items), True
        pending = self._inflight.get(key)
        if pending is not None:  # someone is fetching this list right now: share it
            self.hits += 1
            return list(await asyncio.shield(pending)), False
        self.misses += 1
        task: asyncio.Future[Any] = asyncio.ensure_future(self._fetch(fetch))
        task.add_done_callback(_retrieved)  # a failure nobody waits for any more is not logged
        self._inflight[key] = task
        try:
            value = list(await asyncio.shield(task))
        finally:
            if self._inflight.get(key) is task:
                del self._inflight[key]
        self._cache[key] = _Entry(self.clock(), value)
        self._index(key, value)
        return value, False

    async def _fetch(self, fetch: Callable[[], Awaitable[Any]]) -> Any:
        async with self._limit:
            return await fetch()

    async def environments(
        self, provider: Provider, *, fresh: bool = False
    ) -> list[EnvironmentInfo]:
        """The provider's environments (cached unless `fresh`)."""
        return await self._cached((provider.name, ""), provider.client.environments, fresh)

    async def databases(
        self, provider: Provider, environment_id: str, *, fresh: bool = False
    ) -> list[Any]:
        """The databases of one environment (cached unless `fresh`; a fresh listing
        replaces the cached one)."""
        return await self._cached(
            (provider.name, environment_id),
            lambda: provider.client.databases(environment_id),
            fresh,
        )

    async def listings(
        self,
        scopes: list[Scope],
        *,
        fresh: bool = False,
        unreachable: dict[str, ApiError] | None = None,
    ) -> list[tuple[Scope, list[Any]]]:
        """The databases of each scope, fetched concurrently (at most `concurrency`
        requests at once), in the order of `scopes`. With `unreachable`, a scope whose
        listing fails is recorded there (its label -> the ApiError) and left out."""
        listed = await self._listings(scopes, fresh, unreachable)
        return [(scope, items) for scope, items, _ in listed]

    async def _listings(
        self,
        scopes: list[Scope],
        fresh: bool,
        unreachable: dict[str, ApiError] | None = None,
    ) -> list[tuple[Scope, list[Any], bool]]:
        """Each scope's databases and whether they came from the cache. With
        `unreachable`, a scope whose listing fails is recorded there (its label -> the
        ApiError) and left out; without it, the first ApiError is raised."""

        def fetcher(scope: Scope) -> Callable[[], Awaitable[Any]]:
            return lambda: scope.provider.client.databases(scope.environment.id)

        found = await asyncio.gather(
            *(self._lookup((s.provider.name, s.environment.id), fetcher(s), fresh) for s in scopes),
            return_exceptions=True,
        )
        # Every command waiting for these listings wakes up at once: each goes on in a turn.
        await take_turn()
        result: list[tuple[Scope, list[Any], bool]] = []
        for scope, answer in zip(scopes, found, strict=True):
            if isinstance(answer, ApiError) and unreachable is not None:
                unreachable[scope.label] = answer
                continue
            if isinstance(answer, BaseException):
                raise answer
            items, cached = answer
            result.append((scope, items, cached))
        return result

    def known_names(self) -> set[str]:
        """Names (and labels) of every environment and database in the cache, however
        old; no I/O."""
        names: set[str] = set()
        for entry in self._cache.values():
            for item in entry.items:
                for attribute in ("name", "label"):
                    value = getattr(item, attribute, None)
                    if isinstance(value, str):
                        names.add(value)
        return names

    def homes(
        self, providers: Collection[str], name: str
    ) -> list[tuple[str, str, str | None]] | None:
        """Where the cache, however old, holds a database called `name` (any case) or with
        that id, in these providers: (provider, environment id, environment name, None
        when the environments are not cached) of each; None when it holds none (not
        known). No I/O and no scan: an index kept as
        the cache is written (`_index`), for the Slack ack, which must not wait."""
        found = sorted(
            (provider, environment_id, self._environment_name(provider, environment_id))
            for provider, environment_id in self._homes.get(name.casefold(), ())
            if provider in providers
        )
        return found or None

    def _index(self, key: tuple[str, str], items: list[Any] | None) -> None:
        """Keep `homes`' index of database names and ids in step with the cache entry
        `key` (a provider's environment's databases), now holding `items` (None: gone)."""
        if not key[1]:
            return  # a provider's environments, not databases
        for word in self._words.pop(key, ()):
            places = self._homes.get(word)
            if places is not None:
                places.discard(key)
                if not places:
                    del self._homes[word]
        words = {
            word.casefold()
            for item in items or []
            for word in (getattr(item, "id", None), getattr(item, "name", None))
            if isinstance(word, str) and word
        }
        for word in words:
            self._homes.setdefault(word, set()).add(key)
        if words:
            self._words[key] = words

    def environments_named(self, provider: Provider, typed: str) -> list[tuple[str, str]] | None:
        """The environments of `provider` that `typed` (an `env=` word) names, as (id,
        name), as far as known with no I/O: a one-environment provider's is the provider
        itself; a Console account's come from the cache, however old. None: not known."""
        if ProviderKind(provider.kind).one_environment:
            one = provider.name
            return [(one, one)] if environment_matches(typed, one, one) else []
        entry = self._cache.get((provider.name, ""))
        if entry is None:
            return None
        return [(e.id, e.name) for e in entry.items if environment_matches(typed, e.id, e.name)]

    def _environment_name(self, provider: str, environment_id: str) -> str | None:
        """The cached name of an environment (None when not cached: a binding by name
        may then be that environment, as far as `homes`' callers can tell)."""
        entry = self._cache.get((provider, ""))
        for environment in entry.items if entry else []:
            if getattr(environment, "id", None) == environment_id:
                return str(getattr(environment, "name", "") or environment_id)
        return None

    def age(self, provider: str, environment_id: str = "") -> float | None:
        """Seconds since that list was fetched; None if it is not cached."""
        entry = self._cache.get((provider, environment_id))
        return None if entry is None else max(0.0, self.clock() - entry.fetched_at)

    def invalidate(self, provider: str, environment_id: str | None = None) -> None:
        """Forget the cached lists of a provider (`environment_id` None), or one
        environment's databases only."""
        for key in list(self._cache):
            if key[0] == provider and (environment_id is None or key[1] == environment_id):
                del self._cache[key]
                self._index(key, None)

    def forget(self, provider: str, environment_ids: list[str]) -> None:
        """After the bot added or removed databases in these environments (empty: every
        environment of the provider)."""
        if not environment_ids:
            self.invalidate(provider)
        for environment_id in environment_ids:
            self.invalidate(provider, environment_id)

    # -- the background refresh ---------------------------------------------------------

    async def refresh(self) -> int:
        """Fetch again every list in the cache (concurrently, bounded); the count fetched.

        A failing list keeps its cached value (until its time is up).
        """
        keys = [key for key in list(self._cache) if key in self._fetchers]

        async def again(key: tuple[str, str]) -> bool:
            try:
                await self._cached(key, self._fetchers[key], fresh=True)
            except Exception as exc:  # a background refresh never breaks anything
                log.debug("refresh of %s failed: %s", key, type(exc).__name__)
                return False
            return True

        return sum(await asyncio.gather(*(again(key) for key in keys)))

    async def prime(self, providers: list[Provider]) -> int:
        """Fetch the environments of `providers` and the databases of each (concurrently,
        bounded), so that the first commands find their ids warm; the count of lists
        fetched. A failing provider is skipped (its lists are fetched when needed)."""

        async def one(provider: Provider) -> int:
            try:
                environments = await self.environments(provider, fresh=True)
                scopes = [Scope(provider, environment) for environment in environments]
                return 1 + len(await self.listings(scopes, fresh=True))
            except Exception as exc:  # a background look-up never breaks anything
                log.debug("names of %s not primed: %s", provider.name, type(exc).__name__)
                return 0

        return sum(await asyncio.gather(*(one(p) for p in providers)))

    def start_refresh(self, interval_seconds: float, providers: list[Provider]) -> None:
        """Prime the cache for `providers` now, then refresh it every `interval_seconds`
        (0: neither), in the background and in a context of its own (never an
        interactive one: its requests use the background pool, clients/http.py)."""
        if interval_seconds <= 0 or self._refresher is not None or self.ttl <= 0:
            return

        async def loop() -> None:
            with polling("name refresh"):  # requests nobody typed: audited per interval
                await self.prime(providers)
                while True:
                    await asyncio.sleep(interval_seconds)
                    await self.refresh()

        self._refresher = asyncio.get_running_loop().create_task(
            loop(), context=contextvars.Context()
        )

    async def aclose(self) -> None:
        """Stop the background refresh and any look-up still in flight."""
        task, self._refresher = self._refresher, None
        tasks = [*([task] if task is not None else []), *self._inflight.values()]
        for each in tasks:
            each.cancel()
        for each in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await each

    @contextlib.contextmanager
    def cache_only(self) -> Iterator[None]:
        """Within this block look-ups send no request: they answer from the cache,
        however old, and a list not cached is empty (for shell completion)."""
        token = _CACHE_ONLY.set(True)
        try:
            yield
        finally:
            _CACHE_ONLY.reset(token)

    # -- a 404 on cached ids --------------------------------------------------------------

    @contextlib.contextmanager
    def attempt(self) -> Iterator[Attempt]:
        """Track one run of a command (`Attempt`) in this context."""
        attempt = Attempt()
        token = _ATTEMPT.set(attempt)
        try:
            yield attempt
        finally:
            _ATTEMPT.reset(token)

    async def once_more_on_404(self, run: Callable[[], Awaitable[T]]) -> T:
        """`run()`; when it fails with NotFound after using cached ids and changing
        nothing, drop that provider's lists and run it once more (resolving afresh)."""
        with self.attempt() as first:
            try:
                return await run()
            except NotFound as exc:
                if not first.cached or first.wrote or not exc.provider:
                    raise
                log.info("404 from %s on cached ids: resolving again", exc.provider)
                self.invalidate(exc.provider)
        with self.attempt():
            return await run()

    # -- look-ups -----------------------------------------------------------------------

    async def scopes(
        self,
        bindings: list[Binding],
        providers: list[Provider],
        env: str | None = None,
        unreachable: dict[str, ApiError] | None = None,
    ) -> list[Scope]:
        """The environments these bindings cover, optionally narrowed to `env` (name or id).

        With `unreachable`, a provider whose environments cannot be listed is recorded
        there (name -> its ApiError) and skipped; without it, the ApiError is raised.
        """
        mine = {p.name: [b for b in bindings if b.provider == p.name] for p in providers}
        wanted = [p for p in providers if mine[p.name] and self._may_name(p, mine[p.name], env)]
        lists = await asyncio.gather(
            *(self.environments(p) for p in wanted), return_exceptions=True
        )
        result: list[Scope] = []
        for provider, environments in zip(wanted, lists, strict=True):
            if isinstance(environments, ApiError) and unreachable is not None:
                unreachable[provider.name] = environments
                continue
            if isinstance(environments, BaseException):
                raise environments
            for environment in environments:
                covered = any(
                    environment_matches(b.environment, environment.id, environment.name)
                    for b in mine[provider.name]
                )
                chosen = env is None or environment_matches(env, environment.id, environment.name)
                if covered and chosen:
                    result.append(Scope(provider, environment))
        return result

    def _may_name(self, provider: Provider, bindings: list[Binding], env: str | None) -> bool:
        """False when no binding can name `env` (no I/O): each binding is a name or id
        other than `env`, and the provider's fresh cached environments (if any) show that
        none of them is `env` under its other name. Unknown means True (ask)."""
        if env is None:
            return True
        if any(
            b.environment == WILDCARD or b.environment.casefold() == env.casefold()
            for b in bindings
        ):
            return True
        entry = self._cache.get((provider.name, ""))
        if entry is None or self.clock() - entry.fetched_at >= self.ttl:
            return True
        return any(
            environment_matches(b.environment, e.id, e.name)
            and environment_matches(env, e.id, e.name)
            for b in bindings
            for e in entry.items
        )

    async def find_database(
        self, scopes: list[Scope], name: str, unreachable: dict[str, ApiError] | None = None
    ) -> Found:
        """The one database called `name` (or with that id) in these scopes.

        Looks in the cached listings first; when the name is missing or found more
        than once there, the cached listings are fetched again before answering.
        UserError when there is none, or more than one (naming where, so the
        requester can add `env=`). With `unreachable`, an environment whose databases
        cannot be listed is recorded there (`staging/console` -> its ApiError) and skipped.
        """
        listed = await self._listings(scopes, False, unreachable)
        if scopes and not listed and unreachable:  # nothing could be searched: their error
            failed = {s.label: unreachable[s.label] for s in scopes if s.label in unreachable}
            if failed:
                raise nothing_answered(failed)
        matches = self._matches([(scope, items) for scope, items, _ in listed], name)
        stale = [scope for scope, _, cached in listed if cached]
        if len(matches) != 1 and stale:  # missing or twice in cached lists: look again
            fetched = await self._listings(stale, True, unreachable)
            again = {(s.provider.name, s.environment.id): items for s, items, _ in fetched}
            listings = [
                (scope, again.get((scope.provider.name, scope.environment.id), items))
                for scope, items, _ in listed
            ]
            matches = self._matches(listings, name)
        if len(matches) == 1:
            return matches[0]
        searched = [scope for scope, _, _ in listed]
        where = ", ".join(scope.label for scope in searched) or "no environment"
        if not matches:
            raise NameNotFound(f"no database called {name!r} in the environments searched: {where}")
        places = ", ".join(m.scope.label for m in matches)
        raise UserError(
            f"{name!r} is ambiguous: it exists in {places}. "
            f"Say which with env=<environment>, e.g. env={matches[0].scope.environment.name}"
        )

    @staticmethod
    def _matches(listings: list[tuple[Scope, list[Any]]], name: str) -> list[Found]:
        return [
            Found(scope, database)
            for scope, databases in listings
            for database in databases
            if database.id == name or database.name.casefold() == name.casefold()
        ]
