"""Protected by default from what environments really carry: `label` and `grantType`.

The Console simulator serves environments in the observed shape (`{id, label,
grantType, ...}`, no `type`). Production must be protected from that alone:
the requester cannot approve their own terminate, and a safety snapshot is
planned. The policy may say otherwise, and `envs` says why.
"""

from __future__ import annotations

import pytest

from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role

ONCALL = "C0ONCALL"


async def run(bot, line: str, user: str = "U0ALICE", channel: str = ONCALL) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve(reply: Reply) -> str:
    return next(a.command for a in reply.actions if a.action_id == "approval.approve")


def bind(bot, console_sim, label: str, grant_type: str, db: str) -> None:  # type: ignore[no-untyped-def]
    env = console_sim.add_environment(label, grant_type)
    console_sim.add_database(env.id, db)
    bot.services.permissions.grant(ONCALL, "console", label, Role.ADMIN, by="test")
    bot.services.resolver.invalidate("console")


async def test_the_environments_carry_no_type(console):
    for env in await console.environments():
        assert "type" not in (env.model_extra or {}) and env.grant_type


@pytest.mark.parametrize(
    ("label", "grant_type", "db", "reason"),
    [
        ("production", "red", "orders-db", "label production"),  # the seeded one
        ("PROD", "green", "eu-orders", "label PROD"),
        ("payments", "red", "ledger-db", "grantType red"),
    ],
)
async def test_production_is_protected_from_label_or_grant_type(
    bot, console_sim, label, grant_type, db, reason
):
    bot.services.snapshot_before_destroy = "protected"
    if label != "production":
        bind(bot, console_sim, label, grant_type, db)
    card = await run(bot, f"terminate {db} env={label}")
    assert card.status == "pending", card.text
    assert "Safety nets" in dict(card.fields)  # a safety snapshot is planned
    assert [row[0] for row in card.tables[0].rows] == ["POST", "GET", "DELETE"]
    own = await run(bot, approve(card))
    assert own.status in ("denied", "error")
    assert "cannot approve their own request" in own.text
    assert console_sim.mutating_requests() == []
    envs = await run(bot, "envs")
    rows = {row[0]: row for row in envs.tables[0].rows}
    assert rows[label][-1] == f"yes ({reason})"


async def test_other_environments_are_not_protected(bot, console_sim):
    bot.services.snapshot_before_destroy = "protected"
    bind(bot, console_sim, "qa", "amber", "qa-db")
    card = await run(bot, "terminate qa-db")
    assert "Safety nets" not in dict(card.fields)
    done = await run(bot, approve(card))
    assert done.status == "ok", done.text  # the requester may approve outside production


async def test_the_policy_says_otherwise(bot, console_sim):
    bot.services.snapshot_before_destroy = "protected"
    bot.services.permissions.set_protected("console", "production", False)
    card = await run(bot, "terminate billing-db", user="U0ADMIN")
    assert "Safety nets" not in dict(card.fields)
    envs = await run(bot, "envs")
    rows = {row[0]: row for row in envs.tables[0].rows}
    assert rows["production"][-1] == "no (set by policy)"
    done = await run(bot, approve(card), user="U0ADMIN")  # a bot admin's own request
    assert done.status == "ok", done.text
    bot.services.permissions.set_protected("console", "production", None)
    again = await run(bot, "terminate orders-db", user="U0ADMIN")
    refused = await run(bot, approve(again), user="U0ADMIN")
    assert "cannot approve their own request" in refused.text
