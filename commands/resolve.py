"""Names to ids: people type `orders-db`, the APIs want ids.

Names resolve only within the environments bound to the channel with enough
role for the verb, so a name in an environment the channel may not touch is
never found, and no request is sent when the channel has no such binding. The
lists of environments and databases are cached briefly and dropped whenever a
command changes them.

One failing provider never breaks the others: when the caller passes an
`unreachable` dict, a provider (or one environment) whose listing fails is
recorded there with its error (`{"console-eu": ServerError(...)}`) and skipped,
and the look-up goes on with the others. With `env=`, a provider none of whose
bindings can name that environment is not asked at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.errors import ApiError, ConnectionFailed, ServerError, Timeout, UnusableAnswer
from core.errors import UserError
from core.provider import EnvironmentInfo, Provider
from permissions.model import WILDCARD, Binding, ChannelPolicy, environment_matches
from permissions.roles import Role


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


def eligible_bindings(
    policy: ChannelPolicy, role: Role, providers: list[Provider]
) -> list[Binding]:
    """The channel's bindings on these providers whose role reaches `role` (no I/O)."""
    names = {provider.name for provider in providers}
    return [b for b in policy.bindings if b.provider in names and b.role >= role]


class Resolver:
    """Cached look-ups of environments and databases, per provider."""

    def __init__(self, ttl_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, list[Any]]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0

    async def _cached(self, key: tuple[str, str], fetch: Callable[[], Any]) -> list[Any]:
        entry = self._cache.get(key)
        if entry and self._clock() - entry[0] < self.ttl:
            self.hits += 1
            return entry[1]
        pending = self._inflight.get(key)
        if pending is not None:  # someone is fetching this list right now: share it
            self.hits += 1
            return list(await asyncio.shield(pending))
        self.misses += 1
        task: asyncio.Future[Any] = asyncio.ensure_future(fetch())
        self._inflight[key] = task
        try:
            value = list(await task)
        finally:
            if self._inflight.get(key) is task:
                del self._inflight[key]
        self._cache[key] = (self._clock(), value)
        return value

    async def environments(self, provider: Provider) -> list[EnvironmentInfo]:
        """The provider's environments (cached)."""
        return await self._cached((provider.name, ""), provider.client.environments)

    async def databases(self, provider: Provider, environment_id: str) -> list[Any]:
        """The databases of one environment (cached)."""
        return await self._cached(
            (provider.name, environment_id),
            lambda: provider.client.databases(environment_id),
        )

    def invalidate(self, provider: str, environment_id: str | None = None) -> None:
        """Forget cached lists after a change (one environment, or the whole provider)."""
        for cache in (self._cache, self._inflight):
            for key in list(cache):
                if key[0] == provider and (
                    environment_id is None or key[1] in ("", environment_id)
                ):
                    del cache[key]

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
        result: list[Scope] = []
        for provider in providers:
            mine = [b for b in bindings if b.provider == provider.name]
            if not mine or not self._may_name(provider, mine, env):
                continue
            try:
                environments = await self.environments(provider)
            except ApiError as exc:
                if unreachable is None:
                    raise
                unreachable[provider.name] = exc
                continue
            for environment in environments:
                covered = any(
                    environment_matches(b.environment, environment.id, environment.name)
                    for b in mine
                )
                wanted = env is None or environment_matches(env, environment.id, environment.name)
                if covered and wanted:
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
        if entry is None or self._clock() - entry[0] >= self.ttl:
            return True
        return any(
            environment_matches(b.environment, e.id, e.name)
            and environment_matches(env, e.id, e.name)
            for b in bindings
            for e in entry[1]
        )

    async def find_database(
        self, scopes: list[Scope], name: str, unreachable: dict[str, ApiError] | None = None
    ) -> Found:
        """The one database called `name` (or with that id) in these scopes.

        UserError when there is none, or more than one (naming where, so the
        requester can add `env=`). With `unreachable`, an environment whose databases
        cannot be listed is recorded there (`staging/console` -> its ApiError) and skipped.
        """
        matches: list[Found] = []
        searched: list[Scope] = []
        for scope in scopes:
            try:
                databases = await self.databases(scope.provider, scope.environment.id)
            except ApiError as exc:
                if unreachable is None:
                    raise
                unreachable[scope.label] = exc
                continue
            searched.append(scope)
            for database in databases:
                if database.id == name or database.name.casefold() == name.casefold():
                    matches.append(Found(scope, database))
        if len(matches) == 1:
            return matches[0]
        where = ", ".join(scope.label for scope in searched) or "no environment"
        if not matches:
            raise NameNotFound(f"no database called {name!r} in the environments searched: {where}")
        places = ", ".join(m.scope.label for m in matches)
        raise UserError(
            f"{name!r} is ambiguous: it exists in {places}. "
            f"Say which with env=<environment>, e.g. env={matches[0].scope.environment.name}"
        )
