"""Names to ids in at most one round trip (issue 17): what is cached, what drops it,
and that state shown to people is never the cache's.

Round trips are counted on the simulator's request log (token requests aside).
"""

from __future__ import annotations

import re

from core.invocation import Invocation
from core.reply import Reply
from simulators.graphenedb import ConsoleSimulator

ALICE, DEV = "U0ALICE", "C0DEV"  # #dev-db: admin on development, operator on staging
ENVS = r"^/deployments/environments$"
LISTING = r"^/deployments/environments/[^/]+/databases$"


async def run(bot, line: str) -> Reply:
    return await bot.run(Invocation(user=ALICE, channel=DEV, text=line))


def sent(sim: ConsoleSimulator, since: int = 0) -> list[str]:
    """`METHOD path` of each request after the first `since`, token requests left out."""
    return [
        f"{r.method} {r.path}" for r in sim.requests[since:] if not r.path.endswith("/oauth/token")
    ]


def env_id(sim: ConsoleSimulator, label: str) -> str:
    return next(e.id for e in sim.environments if e.label == label)


def db_id(sim: ConsoleSimulator, name: str) -> str:
    return next(d.id for d in sim.databases if d.name == name)


async def test_show_cold_then_warm_round_trips(bot, console_sim):
    cold = await run(bot, "show sandbox-db")
    assert cold.status == "ok"
    requests = sent(console_sim)
    # cold: environments, then both listings (concurrently), then the database itself
    assert requests[0] == "GET /deployments/environments"
    assert sorted(requests[1:3]) == sorted(
        f"GET /deployments/environments/{env_id(console_sim, e)}/databases"
        for e in ("development", "staging")
    )
    assert len(requests) == 4 and requests[3].endswith(db_id(console_sim, "sandbox-db"))
    before = len(console_sim.requests)
    warm = await run(bot, "show sandbox-db")
    assert warm.status == "ok"
    assert sent(console_sim, before) == [
        f"GET /deployments/databases/graphneo/{db_id(console_sim, 'sandbox-db')}"
    ]


async def test_restart_warm_is_one_request(bot, console_sim):
    await run(bot, "show sandbox-db")
    before = len(console_sim.requests)
    reply = await run(bot, "restart sandbox-db")
    assert reply.status == "ok"
    (only,) = sent(console_sim, before)
    assert only.startswith("POST ") and db_id(console_sim, "sandbox-db") in only


async def test_env_touches_only_its_environment(bot, console_sim):
    reply = await run(bot, "show sandbox-db env=development")
    assert reply.status == "ok"
    listings = [r for r in sent(console_sim) if re.search(LISTING, r.split()[1])]
    assert listings == [
        f"GET /deployments/environments/{env_id(console_sim, 'development')}/databases"
    ]


async def test_a_change_of_state_keeps_the_ids(bot, console_sim):
    await run(bot, "show sandbox-db")
    await run(bot, "pause sandbox-db")
    before = len(console_sim.requests)
    await run(bot, "show sandbox-db")
    assert not any(re.search(ENVS, r.split()[1]) for r in sent(console_sim, before))
    assert not any(re.search(LISTING, r.split()[1]) for r in sent(console_sim, before))


async def test_own_create_drops_the_listing_of_its_environment(bot, console_sim):
    await run(bot, "show sandbox-db")  # both listings cached
    created = await run(bot, "create new-db plan=ds1 version=5.24.0 env=development")
    assert created.status == "ok"
    before = len(console_sim.requests)
    shown = await run(bot, "show new-db")
    assert shown.status == "ok" and shown.title == "new-db"
    listings = [r for r in sent(console_sim, before) if re.search(LISTING, r.split()[1])]
    # development listed again (dropped by the create); staging still from the cache
    assert listings == [
        f"GET /deployments/environments/{env_id(console_sim, 'development')}/databases"
    ]


async def test_own_terminate_drops_the_listing_of_its_environment(bot, console_sim):
    await run(bot, "show sandbox-db")
    resolver = bot.services.resolver
    development, staging = env_id(console_sim, "development"), env_id(console_sim, "staging")
    assert resolver.age("console", development) is not None
    card = await run(bot, "terminate sandbox-db")
    (approve,) = [a for a in card.actions if a.action_id == "approval.approve"]
    done = await run(bot, approve.command)
    assert done.status == "ok"
    assert resolver.age("console", development) is None
    assert resolver.age("console", staging) is not None  # untouched


async def test_a_database_made_outside_the_bot_is_found(bot, console_sim):
    await run(bot, "show sandbox-db")  # listings cached
    console_sim.add_database(env_id(console_sim, "staging"), "outside-db")
    reply = await run(bot, "show outside-db")
    assert reply.status == "ok" and reply.title == "outside-db"


async def test_404_on_cached_ids_resolves_again_once(bot, console_sim):
    await run(bot, "show sandbox-db")  # ids cached
    path = f"^/deployments/databases/graphneo/{db_id(console_sim, 'sandbox-db')}$"
    console_sim.faults.fail_next("GET", path, status=404, body={"error": "Not found"})
    before = len(console_sim.requests)
    reply = await run(bot, "show sandbox-db")
    assert reply.status == "ok" and reply.title == "sandbox-db"
    requests = sent(console_sim, before)
    assert requests[0].startswith("GET /deployments/databases/")  # the 404
    assert "GET /deployments/environments" in requests  # resolved afresh
    assert requests[-1] == requests[0]  # then run once more


async def test_a_second_404_is_the_answer(bot, console_sim):
    await run(bot, "show sandbox-db")
    path = f"^/deployments/databases/graphneo/{db_id(console_sim, 'sandbox-db')}$"
    console_sim.faults.fail_next("GET", path, status=404, times=5, body={"error": "Not found"})
    reply = await run(bot, "show sandbox-db")
    assert reply.status == "error"
    gets = [r for r in console_sim.requests if re.search(path, r.path)]
    assert len(gets) == 3  # the first show, the 404, one more try: no loop


async def test_list_is_always_fresh(bot, console_sim):
    first = await run(bot, "list")
    assert "outside-db" not in {row[0] for row in first.tables[0].rows}
    console_sim.add_database(env_id(console_sim, "development"), "outside-db")
    again = await run(bot, "list")
    assert "outside-db" in {row[0] for row in again.tables[0].rows}
    paused = db_id(console_sim, "sandbox-db")
    await run(bot, "pause sandbox-db")
    states = {row[0]: row[2] for row in (await run(bot, "list development")).tables[0].rows}
    assert states["sandbox-db"] == console_sim._dbs[paused].state  # the API's, now


async def test_cache_only_look_ups_send_nothing(bot, console_sim):
    resolver = bot.services.resolver
    with resolver.cache_only():
        assert await resolver.environments(bot.services.providers["console"]) == []
    assert sent(console_sim) == []


async def test_prime_makes_the_first_command_one_request(bot, console_sim):
    resolver = bot.services.resolver
    await resolver.prime(list(bot.services.providers.values()))
    before = len(console_sim.requests)
    reply = await run(bot, "show sandbox-db")
    assert reply.status == "ok"
    assert len(sent(console_sim, before)) == 1  # the database itself


async def test_the_background_refresh_picks_up_outside_changes(bot, console_sim):
    await run(bot, "show sandbox-db")  # both listings cached
    console_sim.add_database(env_id(console_sim, "staging"), "outside-db")
    refreshed = await bot.services.resolver.refresh()
    assert refreshed == 3  # the environments and the two listings
    before = len(console_sim.requests)
    reply = await run(bot, "show outside-db")
    assert reply.status == "ok"
    assert len(sent(console_sim, before)) == 1  # found in the refreshed cache


async def test_homes_says_where_the_cache_saw_a_database_without_a_request(bot, console_sim):
    """`Resolver.homes` (for the Slack ack): names any case and ids, from the cache only,
    kept in step as listings are fetched again or dropped."""
    resolver = bot.services.resolver
    assert resolver.homes({"console"}, "sandbox-db") is None  # nothing cached yet
    await run(bot, "list")
    before = len(console_sim.requests)
    dev = ("console", env_id(console_sim, "development"), "development")
    assert resolver.homes({"console"}, "Sandbox-DB") == [dev]
    assert resolver.homes({"console"}, db_id(console_sim, "sandbox-db")) == [dev]
    assert resolver.homes({"legacy"}, "sandbox-db") is None  # another provider's
    assert resolver.homes({"console"}, "nosuch-db") is None
    assert len(console_sim.requests) == before  # no request
    # the same name in two environments: both
    orders = resolver.homes({"console"}, "orders-db")
    assert orders is not None and [place[2] for place in orders] == ["staging"]
    del console_sim._dbs[db_id(console_sim, "sandbox-db")]  # terminated outside the bot
    resolver.invalidate("console", env_id(console_sim, "development"))
    assert resolver.homes({"console"}, "sandbox-db") is None  # dropped with its listing
    await run(bot, "list")
    assert resolver.homes({"console"}, "sandbox-db") is None  # fetched again: gone
    assert resolver.homes({"console"}, "catalog-db") is not None


async def test_environments_named_without_a_request(bot, console_sim):
    """What an `env=` word names, for the Slack ack: a one-environment provider (v1,
    TypeDB) is its own environment, in any case; a Console account's come from the
    cache (None until listed), matched as the commands match them (id exactly, name in
    any case)."""
    from core.kinds import ProviderKind
    from core.provider import Provider

    resolver = bot.services.resolver
    graph = Provider(name="graph", kind=ProviderKind.TYPEDB, client=None)  # type: ignore[arg-type]
    assert resolver.environments_named(graph, "Graph") == [("graph", "graph")]
    assert resolver.environments_named(graph, "graph2") == []
    console = bot.services.providers["console"]
    assert resolver.environments_named(console, "staging") is None  # not listed yet
    await run(bot, "envs")
    staging = env_id(console_sim, "staging")
    assert resolver.environments_named(console, "STAGING") == [(staging, "staging")]
    assert resolver.environments_named(console, staging) == [(staging, "staging")]
    assert resolver.environments_named(console, staging.upper()) == []  # ids are exact
    assert resolver.environments_named(console, "qa") == []
