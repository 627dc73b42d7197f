"""Running a command: parse, check rights, resolve, then run it or ask for approval.

The order matters and is the product's promise:
1. parse and bind arguments: an invalid command gets its usage and sends nothing;
2. check the channel's bindings without any I/O: a channel with no binding
   that could allow the verb is refused before any API request;
3. resolve names within the environments the channel may act on;
4. decide per target: denied, allowed (run now) or needs approval (store the
   resolved plan, show a card whose buttons carry only the approval id).
Every step is written to the audit log. No exception escapes as a trace: API
errors are described, anything unexpected is logged and answered plainly.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from clients.dryrun import RecordingTransport, describe_body
from clients.errors import ApiError
from clients.graphenedb import ConsoleClient
from clients.typedb import TypeDBClient
from commands.context import Context, Plan, RoleTooLow, Services
from commands.grammar import GrammarError, ParsedCommand, parse
from commands.registry import Registry, UsageError, Verb
from commands.resolve import Resolver, eligible_bindings
from core.audit_context import acting_as
from core.errors import UserError
from core.invocation import Invocation
from core.refs import ChannelRef, UserRef
from core.reply import Action, Reply, Table, denied, error
from permissions.approvals import Approval
from permissions.policy import ChannelPolicy, Decision, Target, decide, may_approve
from permissions.roles import Role

log = logging.getLogger("graphops.commands")

# Token requests are how a client signs in, not what a command does: previews leave them out.
AUTH_PATHS = frozenset({ConsoleClient.TOKEN_PATH, TypeDBClient.SIGNIN_PATH})


def combine(decisions: list[Decision]) -> Decision:
    """The strictest of several decisions (denied > needs approval > allowed)."""
    for outcome in ("denied", "needs_approval"):
        for decision in decisions:
            if decision.outcome == outcome:
                return decision
    return decisions[0]


class Executor:
    """Turns an Invocation into a Reply."""

    def __init__(self, registry: Registry, services: Services) -> None:
        self.registry = registry
        self.services = services

    async def run(self, invocation: Invocation, *, preapproved: bool = False) -> Reply:
        """Run one command line and answer it; never raises.

        `preapproved` is for commands whose approval was given once for many
        runs (an approved schedule): the permission check still runs, and a
        denial still refuses, but "needs approval" runs at once.
        """
        with acting_as(invocation):
            try:
                return await self._run(invocation, preapproved)
            except RoleTooLow as exc:
                return self._deny(Context(invocation, self.services), "", str(exc))
            except UserError as exc:
                return error(str(exc), title="Cannot do that")
            except ApiError as exc:
                self._audit_outcome(invocation, "api_error", exc.describe())
                return error(exc.describe(), title="The API call failed")
            except Exception:
                log.exception("unexpected error running a command")
                self._audit_outcome(invocation, "internal_error", "unexpected error")
                return error(
                    "Something went wrong inside graphops; nothing more was sent. "
                    "The error is in the bot's log."
                )

    def _audit_outcome(self, invocation: Invocation, outcome: str, text: str) -> None:
        self.services.audit.record(
            "command",
            user=invocation.user,
            channel=invocation.channel,
            outcome=outcome,
            detail={"text": text},
        )

    def _audit_command(
        self, invocation: Invocation, parsed: ParsedCommand, problem: str | None
    ) -> None:
        """Audit a command. Its text is kept only when it fits a verb's syntax: a line
        that does not may hold something typed by mistake (a password as an extra word)."""
        self.services.audit.record(
            "command",
            user=invocation.user,
            channel=invocation.channel,
            verb=parsed.verb,
            outcome=problem,
            detail=None if problem else {"text": parsed.text},
        )

    async def _run(self, invocation: Invocation, preapproved: bool = False) -> Reply:
        services = self.services
        slash = services.slash_command
        try:
            parsed = parse(invocation.text, slash)
        except GrammarError as exc:
            return error(f"{exc}.", title="Cannot read that command")
        try:
            parsed, dry_run = _dry_run_form(parsed)
        except GrammarError as exc:
            self._audit_command(invocation, parsed, "unreadable")
            return error(f"{exc}.", title="Cannot read that command")
        verb = self.registry.get(parsed.verb)
        if verb is None:
            self._audit_command(invocation, parsed, "unknown verb")
            hints = self.registry.suggest(parsed.verb)
            maybe = f" Did you mean {' or '.join(f'`{h}`' for h in hints)}?" if hints else ""
            return error(
                f"There is no command `{parsed.verb}`.{maybe} `{slash} help` lists them.",
                title="Unknown command",
            )
        try:
            values = verb.bind(parsed.args, parsed.options)
        except UsageError as exc:
            self._audit_command(invocation, parsed, "usage error")
            return error(f"{exc}\nExample: `{slash} {verb.example}`", title=f"Usage of {verb.name}")
        self._audit_command(invocation, parsed, None)
        ctx = Context(invocation, services)
        if verb.direct is not None:
            if dry_run:
                return error(f"`{verb.name}` does not act on a database; there is nothing to plan.")
            return await verb.direct(ctx, values)
        return await self._governed(ctx, verb, values, preapproved, dry_run)

    def _providers_for(self, verb: Verb) -> list[Any]:
        return [p for p in self.services.providers.values() if p.kind in verb.kinds]

    async def _governed(
        self,
        ctx: Context,
        verb: Verb,
        values: dict[str, Any],
        preapproved: bool = False,
        dry_run: bool = False,
    ) -> Reply:
        invocation, services = ctx.invocation, self.services
        assert verb.role is not None and verb.prepare is not None
        providers = self._providers_for(verb)
        if not providers:
            kinds = ", ".join(sorted(verb.kinds))
            configured = ", ".join(sorted({p.kind for p in services.providers.values()}))
            return error(
                f"`{verb.name}` works on {kinds} providers; this bot has {configured or 'none'}."
            )
        policy = services.permissions.policy_for(invocation.channel)
        if not eligible_bindings(policy, verb.role, providers):
            return self._deny(ctx, verb.name, self._precheck_reason(ctx, verb, providers, policy))
        plan = await verb.prepare(ctx, values)
        role = plan.role or verb.role
        decisions = [
            decide(policy, invocation.user, verb.name, role, plan.destructive, target)
            for target in plan.targets
        ] or [Decision("allowed", "read-only look-up in bound environments", role=role)]
        decision = combine(decisions)
        services.audit.record(
            "decision",
            user=invocation.user,
            channel=invocation.channel,
            verb=verb.name,
            provider=plan.provider,
            environment=_env_names(plan.targets),
            outcome=decision.outcome,
            detail={"reason": decision.reason, "plan": plan.summary},
        )
        if dry_run:
            return await self._plan_reply(ctx, verb, plan, decision)
        if decision.outcome == "denied":
            return denied(decision.reason)
        if decision.outcome == "needs_approval" and not preapproved:
            return await self._request_approval(ctx, verb, plan, role, decision)
        return await self._execute(ctx, verb, plan)

    def _precheck_reason(
        self, ctx: Context, verb: Verb, providers: list[Any], policy: ChannelPolicy
    ) -> str:
        channel = str(ChannelRef(ctx.invocation.channel))
        names = {p.name for p in providers}
        mine = [b for b in policy.bindings if b.provider in names]
        assert verb.role is not None
        if not mine:
            other = sorted(
                {
                    f"{b.provider} ({self.services.providers[b.provider].kind})"
                    for b in policy.bindings
                    if b.provider in self.services.providers
                }
            )
            if other:
                return (
                    f"`{verb.name}` works on {', '.join(sorted(verb.kinds))} providers; "
                    f"{channel} is bound only to {', '.join(other)}"
                )
            return (
                f"{channel} is not bound to any environment where `{verb.name}` works; "
                "a bot admin can grant one with `grant`"
            )
        held = ", ".join(f"{b.environment} ({b.provider}) as {b.role.label}" for b in mine)
        return f"{channel} is bound to {held}; {verb.name} needs {verb.role.label}"

    def _deny(self, ctx: Context, verb: str, reason: str) -> Reply:
        self.services.audit.record(
            "decision",
            user=ctx.invocation.user,
            channel=ctx.invocation.channel,
            verb=verb,
            outcome="denied",
            detail={"reason": reason},
        )
        return denied(reason)

    async def _execute(self, ctx: Context, verb: Verb, plan: Plan) -> Reply:
        assert verb.execute is not None
        reply = await verb.execute(ctx, plan)
        self.services.audit.record(
            "operation",
            user=ctx.invocation.user,
            channel=ctx.invocation.channel,
            verb=verb.name,
            provider=plan.provider,
            environment=_env_names(plan.targets),
            database=str(plan.params.get("database_name") or ""),
            outcome=reply.status,
            detail={"summary": plan.summary, "title": reply.title or ""},
        )
        return reply

    # -- approvals ------------------------------------------------------------

    async def preview(self, ctx: Context, verb: Verb, plan: Plan) -> Table:
        """The API calls `plan` would make, from its real code run against recording clients."""
        table = Table(columns=["Method", "Path", "Body"])
        factory = self.services.dry_run_providers
        if factory is None or verb.execute is None:
            table.note = "no preview available"
            return table
        recorder = RecordingTransport()
        providers = factory(recorder)
        dry = dataclasses.replace(
            self.services,
            providers=providers,
            open_file=_no_file,
            resolver=Resolver(ttl_seconds=0),
        )
        try:
            await verb.execute(Context(ctx.invocation, dry, dry_run=True), copy.deepcopy(plan))
        except (ApiError, UserError) as exc:
            table.note = f"the preview stopped early: {exc}"
        finally:
            for provider in providers.values():
                await provider.client.aclose()
        redact = self.services.audit.redact
        for call in recorder.calls:
            if call.path not in AUTH_PATHS:
                table.rows.append([call.method, call.path, redact(describe_body(call.body))])
        if not table.rows and table.note is None:
            table.note = "no API call"
        return table

    async def _plan_reply(self, ctx: Context, verb: Verb, plan: Plan, decision: Decision) -> Reply:
        outcome = {
            "allowed": "would run now",
            "needs_approval": "would need an approval",
            "denied": "would be refused",
        }[decision.outcome]
        fields = [
            ("Environment", _env_names(plan.targets) or "-"),
            ("Decision", f"{outcome}: {decision.reason}"),
            *plan.details,
        ]
        nets = safety_nets(plan)
        if nets:
            fields.append(("Safety nets", nets))
        if decision.outcome == "denied":
            calls = Table(columns=["Method", "Path", "Body"], note="nothing would be sent")
        else:
            calls = await self.preview(ctx, verb, plan)
        return Reply(
            status="info",
            title=f"Plan: {plan.summary}",
            text="Nothing was sent; this is what the command would do.",
            fields=fields,
            tables=[calls],
            visibility="ephemeral",
        )

    async def _request_approval(
        self, ctx: Context, verb: Verb, plan: Plan, role: Role, decision: Decision
    ) -> Reply:
        invocation, services = ctx.invocation, self.services
        first = plan.targets[0]
        approval = services.approvals.create(
            requester=invocation.user,
            channel=invocation.channel,
            provider=plan.provider,
            environment_id=first.environment_id,
            environment_name=first.environment_name,
            verb=verb.name,
            target=str(plan.params.get("database_name") or ""),
            args=_plan_to_args(plan),
            summary=plan.summary,
            required_role=role,
            protected=decision.protected,
            ttl_seconds=services.approval_ttl_seconds,
        )
        card = approval_card(approval, decision.reason, plan, services.slash_command)
        card.tables.append(await self.preview(ctx, verb, plan))
        return card

    def confirmation_needed(self, approval_id: str) -> str | None:
        """The name an approver must type to approve this approval (terminate), if any."""
        approval = self.services.approvals.get(approval_id)
        plan = _args_to_plan(approval) if approval else None
        return plan.confirm_name if plan else None

    async def decide_approval(
        self, ctx: Context, approval_id: str, approve: bool, confirm: str | None
    ) -> Reply:
        """Approve (and run) or deny a pending approval, checking the clicker's right now."""
        services, invocation = self.services, ctx.invocation
        approval = services.approvals.get(approval_id)
        if approval is None:
            return error(f"No approval with id {approval_id!r}.")
        if approval.channel != invocation.channel:
            return denied("That approval belongs to another channel; act on it there.")
        verb = self.registry.get(approval.verb)
        plan = _args_to_plan(approval)
        if verb is None or plan is None:
            return error("This approval refers to a command this version cannot run.")
        policy = services.permissions.policy_for(approval.channel)
        checks = [
            may_approve(
                policy,
                invocation.user,
                invocation.user_groups,
                approval.requester,
                approval.verb,
                approval.required_role,
                target,
            )
            for target in plan.targets
        ]
        right = combine(checks)
        if approve and not right.allowed:
            return self._deny(ctx, f"approve {approval.verb}", right.reason)
        if not approve and not right.allowed and invocation.user != approval.requester:
            return self._deny(ctx, f"deny {approval.verb}", right.reason)
        if approve and plan.confirm_name and (confirm or "").strip() != plan.confirm_name:
            typed = f" (you typed {confirm!r})" if confirm else ""
            return error(
                f"To approve, type the database name exactly: `{plan.confirm_name}`{typed}."
            )
        claim = services.approvals.claim(
            approval_id, invocation.user, "approve" if approve else "deny"
        )
        if not claim.claimed:
            return Reply(status="info", text=claim.message, visibility="ephemeral")
        if not approve:
            return Reply(
                status="info",
                title=f"Denied: {plan.summary}",
                text=f"{UserRef(invocation.user)} denied the request of "
                f"{UserRef(approval.requester)}.",
            )
        reply = await self._run_approved(ctx, verb, plan, approval)
        header = (
            f"{UserRef(invocation.user)} approved the request of {UserRef(approval.requester)}."
        )
        reply.text = f"{header}\n{reply.text}".strip()
        return reply

    async def _run_approved(
        self, ctx: Context, verb: Verb, plan: Plan, approval: Approval
    ) -> Reply:
        try:
            reply = await self._execute(ctx, verb, plan)
        except ApiError as exc:
            self.services.approvals.mark_failed(approval.id, exc.describe())
            return error(exc.describe(), title=f"Approved, but it failed: {plan.summary}")
        except UserError as exc:
            self.services.approvals.mark_failed(approval.id, str(exc))
            return error(str(exc), title=f"Approved, but it could not run: {plan.summary}")
        except Exception:
            log.exception("approved command failed")
            self.services.approvals.mark_failed(approval.id, "internal error")
            raise
        if reply.failed:
            self.services.approvals.mark_failed(approval.id, reply.text[:500])
        else:
            self.services.approvals.mark_executed(approval.id, reply.title or plan.summary)
        return reply


def approval_card(approval: Approval, reason: str, plan: Plan, slash: str) -> Reply:
    """The card shown while a destructive command waits for approval."""
    minutes = max(1, round((approval.expires_at - time.time()) / 60))
    expires = time.strftime("%H:%M UTC", time.gmtime(approval.expires_at))
    approve = f"approve {approval.id}"
    if plan.confirm_name:
        approve += f" confirm={plan.confirm_name}"
    nets = safety_nets(plan)
    fields = [
        ("Requested by", str(UserRef(approval.requester))),
        ("Environment", _env_names(plan.targets) or approval.environment_name),
        ("Expires", f"in {minutes} min ({expires})"),
        ("Approval id", approval.id),
        *plan.details,
        *([("Safety nets", nets)] if nets else []),
    ]
    return Reply(
        status="pending",
        title=f"Approval needed: {plan.summary}",
        text=reason,
        fields=fields,
        actions=[
            Action(
                label="Approve",
                command=f"{slash} {approve}",
                style="danger",
                action_id="approval.approve",
                value=approval.id,
            ),
            Action(
                label="Deny",
                command=f"{slash} deny {approval.id}",
                action_id="approval.deny",
                value=approval.id,
            ),
        ],
    )


def safety_nets(plan: Plan) -> str:
    """What the safety nets add to a plan, in words."""
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


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _no_file(invocation: Invocation, reference: str) -> tuple[str, AsyncIterator[bytes]]:
    """Dry-runs never read the file they would upload."""
    return reference.rsplit("/", 1)[-1] or "archive", _nothing()


def _dry_run_form(parsed: ParsedCommand) -> tuple[ParsedCommand, bool]:
    """`plan <command>` or `<command> dry-run=true` -> (the command, True)."""
    options = dict(parsed.options)
    flag = options.pop("dry_run", None)
    dry = flag is not None and flag.lower() in ("true", "yes", "1", "on")
    if flag is not None and not dry and flag.lower() not in ("false", "no", "0", "off"):
        raise GrammarError(f"dry-run= takes true or false, not {flag!r}")
    if parsed.verb == "plan":
        if not parsed.args:
            raise GrammarError("plan needs a command to preview, e.g. `plan terminate sandbox-db`")
        verb, *rest = parsed.args
        return ParsedCommand(verb.lower(), tuple(rest), options, parsed.text), True
    return ParsedCommand(parsed.verb, parsed.args, options, parsed.text), dry


def _env_names(targets: list[Target]) -> str:
    seen: list[str] = []
    for target in targets:
        name = target.environment_name or target.environment_id
        if name not in seen:
            seen.append(name)
    return ", ".join(seen)


def _plan_to_args(plan: Plan) -> dict[str, Any]:
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
    }


def _args_to_plan(approval: Approval) -> Plan | None:
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
        )
    except (KeyError, TypeError, ValueError):
        return None
