"""A resolved command, ready to run now or after approval, and its stored form.

A verb's `prepare` turns names into ids and says what will happen (a `Plan`);
its `execute` calls the API from the plan alone. An approval stores the plan
as JSON (`plan_to_args`) and the approved run reads it back (`args_to_plan`),
so it acts on exactly what the approval card showed even if names changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from permissions.approvals import Approval
from permissions.policy import Target
from permissions.roles import Role


@dataclass
class Plan:
    """A resolved command, ready to run now or after approval.

    `params` is JSON-able and holds resolved ids (`database_id`,
    `database_name`, `environment_id`, `kind`, and the verb's own), so an
    approved plan acts on exactly what was shown in the approval card.
    `targets` are the environments it acts on (what permissions decide on);
    `sources` the environments it copies data out of (clone, restore from a
    snapshot, refresh), each needing at least operator
    (`permissions.policy.decide_source`);
    `role` overrides the verb's role (a read-only form of a verb);
    `confirm_name` is the name an approver must type (terminate); `details`
    are extra (label, value) lines for the approval card and `plan`.
    """

    verb: str
    provider: str
    targets: list[Target]
    params: dict[str, Any]
    summary: str
    destructive: bool = False
    confirm_name: str | None = None
    role: Role | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    sources: list[Target] = field(default_factory=list)


def env_names(targets: list[Target]) -> str:
    """`staging, production`: the environments of `targets`, once each, in order."""
    seen: list[str] = []
    for target in targets:
        name = target.environment_name or target.environment_id
        if name not in seen:
            seen.append(name)
    return ", ".join(seen)


def safety_nets(plan: Plan) -> str:
    """What the safety nets add to a plan, in words ("" when none); see commands/safety.py."""
    nets = []
    if plan.params.get("snapshot_first"):
        nets.append(
            f"a manual snapshot of {plan.params.get('database_name')} is taken and waited for "
            "first; if it fails, nothing else runs"
        )
    if plan.params.get("preflight_target"):
        nets.append(
            "the target is checked again just before switching (running, not pending, "
            "locked or under incident)"
        )
    return "; ".join(nets)


def plan_to_args(plan: Plan) -> dict[str, Any]:
    """The JSON-able form of `plan` stored in `approvals.args`."""
    return {
        "verb": plan.verb,
        "provider": plan.provider,
        "targets": [dataclasses.asdict(t) for t in plan.targets],
        "params": plan.params,
        "summary": plan.summary,
        "destructive": plan.destructive,
        "confirm_name": plan.confirm_name,
        "role": int(plan.role) if plan.role else None,
        "details": [list(d) for d in plan.details],
        "sources": [dataclasses.asdict(t) for t in plan.sources],
    }


def args_to_plan(approval: Approval) -> Plan | None:
    """The plan stored in an approval; None when it is not one this version can read."""
    args = approval.args
    try:
        return Plan(
            verb=args["verb"],
            provider=args["provider"],
            targets=[Target(**t) for t in args["targets"]],
            params=dict(args["params"]),
            summary=args["summary"],
            destructive=bool(args["destructive"]),
            confirm_name=args.get("confirm_name"),
            role=Role(args["role"]) if args.get("role") else None,
            details=[(str(a), str(b)) for a, b in args.get("details", [])],
            sources=[Target(**t) for t in args.get("sources", [])],
        )
    except (KeyError, TypeError, ValueError):
        return None
