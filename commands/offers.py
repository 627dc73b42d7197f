"""The buttons under `show <db>`: the actions this person may take on that database.

Each button is a command line (`/gdb restart orders-db env=staging`) that a click
runs through `Pipeline.run` like a typed command: rights are checked again then,
and destructive ones still ask for an approval. A button is offered only when
`permissions.policy.decide` (through `commands.pipeline.decide_targets`) would not
refuse the person the verb on this database, and when the database's state
allows the action (no Pause on a paused database).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from commands.context import Context
from commands.pipeline import decide_targets
from commands.plan import Plan
from core.reply import Action

RUNNING = ("running",)
STOPPED = ("paused", "stopped")


@dataclass(frozen=True)
class Offer:
    """A verb offered under `show` and the states it applies to (empty: any state)."""

    verb: str
    label: str
    states: tuple[str, ...] = ()


OFFERS = (
    Offer("restart", "Restart", RUNNING),
    Offer("pause", "Pause", RUNNING),
    Offer("resume", "Resume", STOPPED),
    Offer("snapshot", "Snapshot", RUNNING),
    Offer("backup", "Backup", RUNNING),
    Offer("watch", "Watch here"),
    Offer("terminate", "Terminate"),
)


def state_of(fields: list[tuple[str, str]]) -> str:
    """The `State` field of a `show` answer, lower-cased ("" when absent)."""
    for label, value in fields:
        if label == "State":
            return str(value).strip().lower()
    return ""


def offered_actions(ctx: Context, plan: Plan, state: str) -> list[Action]:
    """Buttons for the actions the person may take on the planned database (no I/O)."""
    kind = plan.params.get("kind")
    name = str(plan.params.get("database_name") or "")
    if not name or not plan.targets:
        return []
    target = plan.targets[0]
    env = target.environment_name or target.environment_id
    scoped = env and env != plan.provider  # a provider with several environments
    actions = []
    for offer in OFFERS:
        verb = ctx.registry.get(offer.verb)
        if verb is None or verb.role is None or kind not in verb.kinds:
            continue
        if offer.states and state not in offer.states:
            continue
        decision = decide_targets(ctx, verb.name, verb.role, verb.destructive, plan.targets)
        if decision.outcome == "denied":
            continue
        words = [verb.name, name] + ([f"env={env}"] if scoped else [])
        label = offer.label + (" (approval)" if decision.outcome == "needs_approval" else "")
        actions.append(
            Action(
                label=label,
                command=f"{ctx.services.slash_command} {shlex.join(words)}",
                style="danger" if verb.destructive else None,
            )
        )
    return actions
