"""The one governed path: every command, however it starts, is run and decided here.

Typed commands and buttons (`Pipeline.run`), approval clicks
(`Pipeline.decide_approval`), scheduled runs (commands/scheduled.py's
runner calls `Pipeline.run` with `preapproved=True`) and the checks a verb
makes of its own (`evaluate`, `decide_targets`, `refuse`) all go through the
functions of this module; permissions/ is the only place that decides, and
`refuse` is the only place that words and audits a denial.

The order is the product's promise:
1. parse and bind arguments: an invalid command gets its usage and sends nothing;
2. check the channel's bindings without any I/O: a channel with no binding
   that could allow the verb is refused before any API request;
3. resolve names within the environments the channel may act on (the verb's
   `prepare`, which builds a `Plan`);
4. decide per target: denied, allowed (run now), needs approval (store the
   resolved plan, show a card whose buttons carry only the approval id), or
   only preview it (`plan <command>`, `dry-run=true`).
Every step is written to the audit log, with the database the command concerns
(as typed, then as resolved): `graphops audit --db` finds its command, decision,
API call and outcome rows, refusals included. No exception escapes as a trace: API
errors are described, anything unexpected is logged and answered plainly.

Secrets: a secret typed privately (`Invocation.secret`) is made known to the
process's redactor before anything runs, and every Reply leaves `run` and
`decide_approval` redacted (core.redaction), so what a transport shows or the
tracker keeps holds no secret, even one an API echoed back.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clients.errors import ApiError
from clients.http import interactive
from commands.choices import Missing, has_source, options_for, prompt, with_option
from commands.context import Context, NeedsChoice, Refused, Services
from commands.execution import Journal, OutcomeUnknown, StorePaused, running
from commands.grammar import (
    GrammarError,
    ParsedCommand,
    parse,
    password_like_words,
)
from commands.plan import Plan, args_to_plan, env_names, plan_to_args, safety_nets
from commands.preview import dry_run_form, plan_reply, preview
from commands.registry import MissingArgument, Registry, UsageError, Verb
from commands.resolve import eligible_bindings
from commands.targets import how_to_check, unreachable_lines
from core.audit_context import acting_as, concerning, current_database
from core.errors import UserError, is_store_busy
from core.invocation import Invocation
from core.mutations import watching_mutations
from core.provider import Provider
from core.redaction import looks_like_a_password, redact_reply, remember
from core.refs import UserRef, posted_in
from core.reply import Action, Choice, Option, Reply, denied, error
from core.words import environment_label
from operations.locked import UNTIL_FREE, write_when_free
from permissions.approvals import Approval, LostRunner
from permissions.audit import iso_time
from permissions.model import ChannelPolicy
from permissions.policy import (
    Decision,
    Target,
    admit,
    decide,
    decide_source,
    held,
    may_approve,
    where,
)
from permissions.roles import Role

log = logging.getLogger("graphops.commands")

STORE_BUSY_MIDWAY = (
    "Another process took the bot's SQLite write lock while this command ran, so graphops "
    "stopped it there. Check with `show` or `ops` (on a TypeDB server: `dbs`, `users`) "
    "whether anything started before trying again."
)


@dataclass(frozen=True)
class Evaluation:
    """What deciding a command gave: its plan (None when refused before any I/O), the
    role it needs, the decision (allowed, needs_approval or denied, with the reason),
    and the decision of each part (`target staging`, `source production`) it combines."""

    plan: Plan | None
    role: Role
    decision: Decision
    parts: tuple[tuple[str, Decision], ...] = ()


def combine(decisions: list[Decision]) -> Decision:
    """The strictest of several decisions (denied > needs approval > allowed)."""
    for outcome in ("denied", "needs_approval"):
        for decision in decisions:
            if decision.outcome == outcome:
                return decision
    return decisions[0]


def decide_parts(
    ctx: Context,
    verb: str,
    role: Role,
    destructive: bool,
    targets: list[Target],
    sources: list[Target] | None = None,
) -> list[tuple[str, Decision]]:
    """The decision for each environment a command touches, labelled: `target <env>`
    (permissions.policy.decide at `role`) and `source <env>` for each environment it
    copies data out of (permissions.policy.decide_source: at least operator there)."""
    policy = ctx.policy()
    user = ctx.invocation.user
    parts = [
        (f"target {env_names([t])}", decide(policy, user, verb, role, destructive, t))
        for t in targets
    ]
    parts += [
        (f"source {env_names([s])}", decide_source(policy, user, verb, s)) for s in sources or []
    ]
    return parts


def decide_targets(
    ctx: Context,
    verb: str,
    role: Role,
    destructive: bool,
    targets: list[Target],
    sources: list[Target] | None = None,
) -> Decision:
    """`decide_parts` combined (the strictest wins); a command without targets (a read
    over the bound environments) is allowed at `role`."""
    return combine_parts(decide_parts(ctx, verb, role, destructive, targets, sources), role)


def combine_parts(parts: list[tuple[str, Decision]], role: Role) -> Decision:
    """The strictest decision of `parts`; none (a read over the bound environments,
    no single target) is allowed at `role`."""
    if not parts:
        return Decision("allowed", "read-only look-up in bound environments", role=role)
    return combine([decision for _, decision in parts])


def refuse(ctx: Context, verb: str, reason: str) -> Reply:
    """Audit a denial of `verb` for this invocation and answer it (ephemeral, with `reason`)."""
    ctx.services.audit.record(
        "decision",
        user=ctx.invocation.user,
        channel=ctx.invocation.channel,
        database=current_database.get(),
        verb=verb,
        outcome="denied",
        detail={"reason": reason},
    )
    return denied(reason)


#: Arguments that are ids graphops or an API issued (an approval's, a switch's, a
#: schedule's, a snapshot's): a verb taking one never has its words taken for passwords.
_IDS = ("<id>", "<snapshot>", "<backup>")


def database_named(values: dict[str, object]) -> str | None:
    """The database a command's arguments name (`<db>`), as typed, if any."""
    named = values.get("db")
    return named if isinstance(named, str) and named else None


def providers_for(services: Services, verb: Verb) -> list[Provider]:
    """The configured providers of the kinds `verb` works on."""
    return [p for p in services.providers.values() if p.kind in verb.kinds]


def precheck_reason(ctx: Context, verb: Verb, policy: ChannelPolicy) -> str:
    """Why the channel's bindings cannot allow `verb` at all (said before any request)."""
    services = ctx.services
    channel = where(policy)
    names = {p.name for p in providers_for(services, verb)}
    mine = [b for b in policy.bindings if b.provider in names]
    assert verb.role is not None
    withheld = [b for b in policy.withheld if b.provider in names]
    if not mine and withheld:
        first = withheld[0]
        return (
            f"{channel} is bound to {environment_label(first.provider, first.environment)} as "
            f"{first.role.label}, but {first.rule}, and {UserRef(policy.person)} is not among "
            "them; a bot admin can add you with `grant ... users=`"
        )
    if not mine:
        other = sorted(
            {
                f"{b.provider} ({services.providers[b.provider].kind})"
                for b in policy.bindings
                if b.provider in services.providers
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
    roles = ", ".join(
        f"{environment_label(b.provider, b.environment)} {held(policy, b.role, b.rule)}"
        for b in mine
    )
    return f"{channel} is bound to {roles}; {verb.name} needs {verb.role.label}"


async def evaluate(ctx: Context, verb: Verb, values: dict[str, object]) -> Evaluation:
    """Check the bindings (no I/O), resolve (the verb's `prepare`) and decide; runs nothing.

    Raises what `prepare` raises (UserError, Refused, ApiError).
    """
    assert verb.role is not None and verb.prepare is not None
    policy = ctx.policy()
    if not eligible_bindings(policy, verb.role, providers_for(ctx.services, verb)):
        return Evaluation(None, verb.role, Decision("denied", precheck_reason(ctx, verb, policy)))
    plan = await verb.prepare(ctx, values)
    role = plan.role or verb.role
    parts = decide_parts(ctx, verb.name, role, plan.destructive, plan.targets, plan.sources)
    return Evaluation(plan, role, combine_parts(parts, role), tuple(parts))


@dataclass(frozen=True)
class Reading:
    """A typed line as `Pipeline.read` reads it.

    `loggable`: the line as the audit (and the inbox) keeps it: whole when it fits a
    verb's syntax, else the verb alone (a line that does not fit may hold a password
    typed by mistake), `(unreadable)` or `(unknown command)`. `parsed`: its words (a
    dry run's as the command previewed; None when unreadable); `verb`: the registry's
    verb (None when unknown); `fits`: its arguments and options bind; `dry`: a dry
    run (`plan …`, `dry-run=true`), which changes nothing; `whole`: `loggable` is the
    whole line (a shell's history may keep it).
    """

    loggable: str
    parsed: ParsedCommand | None = None
    verb: Verb | None = None
    fits: bool = False
    dry: bool = False
    whole: bool = False  # `loggable` is the whole line (it may be kept as typed)


@dataclass(frozen=True)
class Pipeline:
    """Runs commands over one registry of verbs and one set of services."""

    registry: Registry
    services: Services

    def context(self, invocation: Invocation) -> Context:
        """A Context for `invocation` over this pipeline's services and verbs."""
        return Context(invocation, self.services, self.registry)

    def admission(self, invocation: Invocation) -> Decision:
        """Whether the person acting may use graphops at all (their Slack workspace;
        permissions.policy.admit), decided without any I/O."""
        return admit(invocation.workspace, invocation.home, self.services.permissions.allowed_teams)

    async def run(self, invocation: Invocation, *, preapproved: bool = False) -> Reply:
        """Run one command line and answer it; never raises.

        `preapproved` is for commands whose approval was given once for many
        runs (an approved schedule): the permission check still runs, and a
        denial still refuses, but "needs approval" runs at once. The answer holds no
        secret (see the module docstring).
        """
        if invocation.secret is not None:
            remember(invocation.secret, "password")
        with acting_as(invocation), interactive():  # a person waits: the interactive pool
            return redact_reply(await self._answer(invocation, preapproved))

    async def _answer(self, invocation: Invocation, preapproved: bool) -> Reply:
        admission = self.admission(invocation)
        if not admission.allowed:
            return refuse(self.context(invocation), "", admission.reason)
        try:
            # ids from the resolver's cache that the API no longer knows (404):
            # resolved afresh and run once more, if nothing was changed
            return await self.services.resolver.once_more_on_404(
                lambda: self._run(invocation, preapproved)
            )
        except Refused as exc:
            return refuse(self.context(invocation), "", str(exc))
        except UserError as exc:
            return error(str(exc), title="Cannot do that")
        except ApiError as exc:
            self._audit_outcome(invocation, "api_error", exc.describe())
            return error(exc.describe(), title="The API call failed")
        except Exception as exc:
            if is_store_busy(exc):  # another process took the SQLite write lock
                log.warning("the store was locked by another process; command stopped")
                self._audit_outcome(invocation, "store_busy", STORE_BUSY_MIDWAY)
                return error(STORE_BUSY_MIDWAY, title="The bot's store is busy")
            log.exception("unexpected error running a command")
            self._audit_outcome(invocation, "internal_error", "unexpected error")
            return error(
                "Something went wrong inside graphops; nothing more was sent. "
                "The error is in the bot's log."
            )

    async def decide_approval(
        self,
        invocation: Invocation,
        approval_id: str,
        approve: bool,
        confirm: str | None,
        on_claimed: OnClaimed | None = None,
    ) -> Reply:
        """Approve (and run) or deny a pending approval for the clicker of a button (the
        answer holds no secret)."""
        with acting_as(invocation), interactive():
            admission = self.admission(invocation)
            if not admission.allowed:
                verb = "approve" if approve else "deny"
                return redact_reply(refuse(self.context(invocation), verb, admission.reason))
            reply = await decide_approval(
                self.context(invocation), approval_id, approve, confirm, on_claimed
            )
            return redact_reply(reply)

    async def resume_approved(
        self, approval: Approval, transport: str = "slack", *, paused: bool = False
    ) -> Reply:
        """Resume (or end) approved work a stopped process left, as its approver in its
        channel; the caller took it over (`ApprovalStore.take_over`), or it is this
        process's own work `paused` by a locked store. See `resume_approved`.
        The answer holds no secret."""
        invocation = Invocation(
            user=approval.decided_by or approval.requester,
            channel=approval.channel,
            text=f"approve {approval.id}",
            transport=transport,
        )
        with acting_as(invocation):
            resumed = await resume_approved(self.context(invocation), approval, paused=paused)
            return redact_reply(resumed)

    def confirmation_needed(self, approval_id: str) -> str | None:
        """The name an approver must type to approve this approval (terminate), if any."""
        approval = self.services.approvals.get(approval_id)
        plan = args_to_plan(approval) if approval else None
        return plan.confirm_name if plan else None

    def _remember_typed_passwords(self, text: str, verb: Verb | None) -> None:
        """For a line that does not fit `verb` (unknown: None; unreadable, extra words,
        an unknown option), before anything repeats or keeps it: make each word that
        looks like a password a secret the redactor knows (kind password; as typed and
        lower-cased, as a verb is repeated), so no reply, audit row or log line shows it.
        Not for a verb that takes an issued id (`approve 7Hk2mQ9x now`: the id would
        vanish from its card), nor for a name the name cache holds (`Prod-EU1`). A line
        that fits is never passed here: its words are arguments."""
        if verb is not None and any(i in verb.usage for i in _IDS):
            return
        known = self.services.resolver.known_names()
        for word in password_like_words(text):
            if word not in known:
                remember(word, "password")
                remember(word.lower(), "password")

    def read(self, text: str) -> Reading:
        """`text` read once, with no I/O (parse and registry only): what the Slack ack path
        needs of it (`Reading`). The command itself is read again when it runs."""
        try:
            parsed, dry = dry_run_form(parse(text, self.services.slash_command))
        except GrammarError:
            return Reading("(unreadable)")
        verb = self.registry.get(parsed.verb)
        if verb is None:
            shown = parsed.verb_shown
            return Reading(shown[:40] if shown is not None else "(unknown command)", parsed)
        try:
            verb.bind(parsed.args, parsed.options)
        except UsageError:
            return Reading(f"{parsed.verb} …", parsed, verb)
        if self._secret_topic(verb, parsed) is not None:
            return Reading(f"{parsed.verb} …", parsed, verb, fits=True)
        return Reading(parsed.text, parsed, verb, fits=True, dry=dry, whole=True)

    def _secret_topic(self, verb: Verb, parsed: ParsedCommand) -> str | None:
        """The word of `help <word>` when it names no verb and looks like a password
        (a password typed after `help` by mistake): the help verb does not repeat it
        (commands/verbs/general.py), `_run` makes it a secret the redactor knows before
        the audit row is written, and `read` keeps the line without it."""
        if verb.name != "help" or not parsed.args:
            return None
        topic = parsed.args[0]
        known = self.registry.topic(topic, self.services.slash_command) is not None
        return topic if not known and looks_like_a_password(topic) else None

    def _audit_outcome(self, invocation: Invocation, outcome: str, text: str) -> None:
        self.services.audit.record(
            "command",
            user=invocation.user,
            channel=invocation.channel,
            database=current_database.get(),
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
            database=current_database.get(),
            verb=parsed.verb_shown or "(unknown command)",
            outcome=problem,
            detail=None if problem else {"text": parsed.text},
        )

    async def _run(self, invocation: Invocation, preapproved: bool = False) -> Reply:
        slash = self.services.slash_command
        try:
            parsed = parse(invocation.text, slash)
        except GrammarError as exc:
            self._remember_typed_passwords(invocation.text, None)
            return error(f"{exc}.", title="Cannot read that command")
        try:
            parsed, dry_run = dry_run_form(parsed)
        except GrammarError as exc:
            self._remember_typed_passwords(invocation.text, self.registry.get(parsed.verb))
            self._audit_command(invocation, parsed, "unreadable")
            return error(f"{exc}.", title="Cannot read that command")
        verb = self.registry.get(parsed.verb)
        if verb is None:
            self._remember_typed_passwords(invocation.text, None)
            self._audit_command(invocation, parsed, "unknown verb")
            hints = self.registry.suggest(parsed.verb)
            maybe = f" Did you mean {' or '.join(f'`{h}`' for h in hints)}?" if hints else ""
            shown = parsed.verb_shown
            named = (
                f"`{shown}`"
                if shown is not None
                else "like that (not repeated: it looks like a password)"
            )
            return error(
                f"There is no command {named}.{maybe} `{slash} help` lists them.",
                title="Unknown command",
            )
        try:
            values = verb.bind(parsed.args, parsed.options)
        except UsageError as exc:
            self._remember_typed_passwords(invocation.text, verb)
            if isinstance(exc, MissingArgument) and has_source(verb, exc.argument) and not dry_run:
                return await self._ask(invocation, verb, parsed, Missing.of(exc))
            self._audit_command(invocation, parsed, "usage error")
            return error(f"{exc}\nExample: `{slash} {verb.example}`", title=f"Usage of {verb.name}")
        concerning(database_named(values))
        secret = self._secret_topic(verb, parsed)
        if secret is not None:  # before the audit row is written (and anything else)
            remember(secret, "password")
            remember(secret.lower(), "password")
        self._audit_command(invocation, parsed, None)
        ctx = self.context(invocation)
        if verb.direct is not None:
            if dry_run:
                return error(f"`{verb.name}` does not act on a database; there is nothing to plan.")
            return await verb.direct(ctx, values)
        try:
            return await governed(ctx, verb, values, preapproved=preapproved, dry_run=dry_run)
        except NeedsChoice as exc:
            options = [
                Option(
                    label=label,
                    value=value,
                    command=with_option(slash, parsed, exc.argument, value),
                )
                for label, value in exc.values
            ]
            return asking(f"{prompt(verb, exc.argument)}", str(exc), exc.argument, options)

    async def _ask(
        self, invocation: Invocation, verb: Verb, parsed: ParsedCommand, missing: Missing
    ) -> Reply:
        """Answer a command that lacks `missing` with the values this person may pick
        (commands/choices.py); refused as the command would be where they hold no role."""
        assert verb.role is not None
        self.services.audit.record(
            "command",
            user=invocation.user,
            channel=invocation.channel,
            verb=parsed.verb,
            outcome="asked",
            detail={"text": parsed.text, "missing": missing.argument},
        )
        ctx = self.context(invocation)
        if not providers_for(self.services, verb):
            kinds = ", ".join(sorted(verb.kinds))
            return error(f"`{verb.name}` works on {kinds} providers; this bot has none of them.")
        policy = ctx.policy()
        if not eligible_bindings(policy, verb.role, providers_for(self.services, verb)):
            return refuse(ctx, verb.name, precheck_reason(ctx, verb, policy))
        options = await options_for(ctx, verb, parsed, missing, verb.role)
        question = prompt(verb, missing.argument)
        if not options:
            return error(
                f"{question} There is none you may {verb.name} here "
                f"(where you hold {verb.role.label}). `{self.services.slash_command} "
                f"help {verb.name}` shows how to type it.",
                title=f"Nothing to {verb.name}",
            )
        return asking(
            question, f"Pick one; it runs `{verb.name}` as if typed.", missing.argument, options
        )


def asking(question: str, text: str, argument: str, options: list[Option]) -> Reply:
    """The answer that asks for one missing argument (only the asker sees it)."""
    return Reply(
        status="info",
        title=question,
        text=text,
        choice=Choice(argument=argument, prompt=question, options=options),
        visibility="ephemeral",
    )


async def governed(
    ctx: Context,
    verb: Verb,
    values: dict[str, object],
    *,
    preapproved: bool = False,
    dry_run: bool = False,
) -> Reply:
    """Decide a verb that acts on environments, then run it, ask for approval, or preview it.

    A provider or environment that could not be listed on the way (`ctx.unreachable`)
    is named in the answer, one line each, beside what the others gave.
    """
    reply = await _govern(ctx, verb, values, preapproved=preapproved, dry_run=dry_run)
    if ctx.unreachable:
        lines = "\n".join(unreachable_lines(ctx.unreachable))
        reply.text = f"{reply.text}\n{lines}".strip()
    return reply


async def _govern(
    ctx: Context,
    verb: Verb,
    values: dict[str, object],
    *,
    preapproved: bool,
    dry_run: bool,
) -> Reply:
    invocation, services = ctx.invocation, ctx.services
    if dry_run:
        ctx.dry_run = True  # prepare reads (names) but fetches nothing it would keep
    if not providers_for(services, verb):
        kinds = ", ".join(sorted(verb.kinds))
        configured = ", ".join(sorted({p.kind for p in services.providers.values()}))
        return error(
            f"`{verb.name}` works on {kinds} providers; this bot has {configured or 'none'}."
        )
    evaluation = await evaluate(ctx, verb, values)
    plan, decision = evaluation.plan, evaluation.decision
    if plan is None:
        return refuse(ctx, verb.name, decision.reason)
    concerning(str(plan.params.get("database_name") or ""))
    services.audit.record(
        "decision",
        user=invocation.user,
        channel=invocation.channel,
        database=current_database.get(),
        verb=verb.name,
        provider=plan.provider,
        environment=env_names(plan.targets),
        outcome=decision.outcome,
        detail={
            "reason": decision.reason,
            "plan": plan.summary,
            **({"sources": env_names(plan.sources)} if plan.sources else {}),
        },
    )
    if dry_run:
        return await plan_reply(ctx, verb, plan, decision, evaluation.parts)
    if decision.outcome == "denied":
        return denied(decision.reason)
    if decision.outcome == "needs_approval" and not preapproved:
        return await request_approval(ctx, verb, plan, evaluation.role, decision)
    return await execute(ctx, verb, plan)


async def execute(ctx: Context, verb: Verb, plan: Plan) -> Reply:
    """Run an allowed (or approved) plan and audit its outcome. The reply is not redacted
    here: whatever keeps it redacts it (the audit, an approval's result, the outbox, the
    tracker's origin), and the Pipeline's entry points redact every answer once."""
    assert verb.execute is not None
    concerning(str(plan.params.get("database_name") or ""))
    reply = await verb.execute(ctx, plan)
    ctx.services.audit.record(
        "operation",
        user=ctx.invocation.user,
        channel=ctx.invocation.channel,
        verb=verb.name,
        provider=plan.provider,
        environment=env_names(plan.targets),
        database=current_database.get(),
        outcome=reply.status,
        detail={"summary": plan.summary, "title": reply.title or ""},
    )
    return reply


# -- approvals ----------------------------------------------------------------------------


async def request_approval(
    ctx: Context, verb: Verb, plan: Plan, role: Role, decision: Decision
) -> Reply:
    """Store the plan as a pending approval and answer with its card (and preview)."""
    invocation, services = ctx.invocation, ctx.services
    first = plan.targets[0]
    approval = services.approvals.create(
        requester=invocation.user,
        channel=invocation.channel,
        provider=plan.provider,
        environment_id=first.environment_id,
        environment_name=first.environment_name,
        verb=verb.name,
        target=str(plan.params.get("database_name") or ""),
        args=plan_to_args(plan),
        summary=plan.summary,
        required_role=role,
        protected=decision.protected,
        ttl_seconds=services.approval_ttl_seconds,
    )
    card = approval_card(approval, decision.reason, plan, services.slash_command)
    card.tables.append(await preview(ctx, verb, plan))
    return card


OnClaimed = Callable[[Approval], Awaitable[None]]


async def decide_approval(
    ctx: Context,
    approval_id: str,
    approve: bool,
    confirm: str | None,
    on_claimed: OnClaimed | None = None,
) -> Reply:
    """Approve (and run) or deny a pending approval, checking the clicker's right now.

    `on_claimed` is called once this click has made the decision, before the approved
    work runs (the Slack transport edits the card: no live buttons while it runs).
    """
    services, invocation = ctx.services, ctx.invocation
    approval = services.approvals.get(approval_id)
    if approval is None:
        return error(f"No approval with id {approval_id!r}.")
    if approval.channel != invocation.channel:
        return denied("That approval belongs to another channel; act on it there.")
    concerning(approval.target)
    verb = ctx.registry.get(approval.verb)
    plan = args_to_plan(approval)
    if verb is None or plan is None:
        return error("This approval refers to a command this version cannot run.")
    policy = services.permissions.policy_for(approval.channel, invocation)
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
    # The channel must still hold its rights on every environment the data comes from.
    checks += [
        _no_longer(decide_source(policy, approval.requester, approval.verb, source))
        for source in plan.sources
    ]
    right = combine(checks)
    if approve and not right.allowed:
        return refuse(ctx, f"approve {approval.verb}", right.reason)
    if not approve and not right.allowed and invocation.user != approval.requester:
        return refuse(ctx, f"deny {approval.verb}", right.reason)
    if approve and plan.confirm_name and (confirm or "").strip() != plan.confirm_name:
        typed = f" (you typed {confirm!r})" if confirm else ""
        return error(f"To approve, type the database name exactly: `{plan.confirm_name}`{typed}.")
    # Held from the claim to the end: the sweep resumes only this process's paused work.
    with running(approval_id) as mine:
        claim = services.approvals.claim(
            approval_id, invocation.user, "approve" if approve else "deny"
        )
        if not claim.claimed:
            # No title: the Slack transport knows this answer by it (bot/slack/decisions.py);
            # the shell shows its text as the head line.
            return Reply(status="info", text=claim.message, visibility="ephemeral")
        if not mine:  # cannot be: work runs here only after a claim, which this one won
            return _already_running()
        if not approve:
            return Reply(
                status="info",
                title=f"Denied: {plan.summary}",
                text=f"{UserRef(invocation.user)} denied the request of "
                f"{UserRef(approval.requester)}.",
            )
        claimed = claim.approval or approval
        if on_claimed is not None:
            await on_claimed(claimed)
        reply = await run_approved(ctx, verb, plan, claimed)
    header = f"{UserRef(invocation.user)} approved the request of {UserRef(approval.requester)}."
    reply.text = f"{header}\n{reply.text}".strip()
    return reply


def _already_running() -> Reply:
    """The answer to a decision on an approval whose work runs in this process now."""
    return Reply(
        status="info",
        text="This approval's work is running now; its outcome will be in the card's thread.",
        visibility="ephemeral",
    )


def _paused(ctx: Context, plan: Plan) -> Reply:
    """The answer to approved work paused by another process's lock on the store."""
    goes_on = (
        "The shell goes on with it before your next command, once the store is free."
        if ctx.invocation.transport == "shell"
        else "It goes on by itself once the store is free (within 30 s), and its outcome "
        "will be in the card's thread."
    )
    return Reply(
        status="info",
        title=f"Approved, paused: {plan.summary}",
        text="Another process has held graphops' store (its SQLite file) for minutes, so "
        f"the next step could not be written down; nothing more was sent. {goes_on}",
    )


def _no_longer(decision: Decision) -> Decision:
    """A source decision as seen at approval time (a denial: cannot be approved any more)."""
    if decision.allowed:
        return decision
    return dataclasses.replace(
        decision, reason=f"this request can no longer be approved: {decision.reason}"
    )


def _failure(plan: Plan, what: str, reason: str) -> Reply:
    """The answer to approved work that failed: shown in the card's thread, not only to
    the approver."""
    return Reply(status="error", title=f"Approved, but {what}: {plan.summary}", text=reason)


async def run_approved(
    ctx: Context, verb: Verb, plan: Plan, approval: Approval, *, resumed: bool = False
) -> Reply:
    """Run approved work as a persisted state machine (commands/execution.py) and end it;
    the caller holds it as `running` in this process.

    approved -> executing (each step written before its request) -> executed | failed,
    with the reply kept in the approval row for the card and its thread. A failure
    (the API, a refusal at execution, an unknown outcome after a restart, anything
    unexpected) is also queued for the environment's incident channel. `resumed`:
    this process took the work over from a stopped one, or goes on with its own
    paused work. LostRunner (another process took it over) and cancellation
    (shutdown) leave it unfinished for the next start; a store locked by another
    process through every try leaves it paused (`_paused`), for the sweep to resume.
    """
    approvals = ctx.services.approvals
    journal = Journal(approvals, approval, ctx.services.store_ready)
    try:
        started = await journal.write_or_pause(lambda: approvals.start(approval.id), "start")
    except StorePaused:
        return _paused(ctx, plan)
    if not started:
        return Reply(
            status="info",
            text="Another graphops process is running this approval; it reports in the thread.",
            visibility="ephemeral",
        )
    run_ctx = dataclasses.replace(ctx, journal=journal)
    try:
        if resumed and journal.interrupted:
            raise OutcomeUnknown(
                f"graphops stopped just after sending `{journal.interrupted}` for it (a "
                "restart, or a store locked by another process), so whether it was carried "
                "out is unknown; it is not sent again"
            )
        with watching_mutations(journal.before_mutation):
            reply = await execute(run_ctx, verb, plan)
    except StorePaused:
        log.warning("approved work %s paused: the store is locked", approval.id)
        return _paused(ctx, plan)
    except OutcomeUnknown as exc:
        ctx.services.resolver.invalidate(plan.provider)
        reply = _failure(
            plan,
            "its outcome is unknown",
            f"{exc}. Nothing more was sent; "
            f"{how_to_check(ctx.services.providers, plan.provider)} before asking again.",
        )
    except ApiError as exc:
        reply = _failure(plan, "it failed", exc.describe())
    except UserError as exc:
        reply = _failure(plan, "it could not run", str(exc))
    except LostRunner:
        raise
    except Exception:
        log.exception("approved command failed")
        reply = _failure(
            plan,
            "it failed inside graphops",
            "An unexpected error stopped it; nothing more was sent. The error is in the bot's log.",
        )
    failed = reply.failed
    if failed:
        reply.visibility = "channel"
    kept = reply.model_copy(update={"private_text": None, "secret_prompt": None})
    result = reply.text if failed else (reply.title or plan.summary)
    # The outcome is known to this process only: kept however long the store is locked
    # (a pause would have a later run call the outcome unknown, or send nothing more
    # for work that had sent its request: found by an attack).
    finished = await write_when_free(
        lambda: approvals.finish(
            approval.id,
            "failed" if failed else "executed",
            ctx.services.audit.redact(result),
            ctx.services.audit.redact(kept.model_dump_json()),
        ),
        f"approval {approval.id}'s outcome",
        journal.ready,
        UNTIL_FREE,
    )
    if failed and finished:
        try:
            await write_when_free(
                lambda: announce_failure(ctx, approval, plan, reply),
                f"the incident notice of approval {approval.id}",
                journal.ready,
                journal.attempts,
            )
        except sqlite3.OperationalError as exc:  # the card's thread still tells it
            log.error("approval %s: its failure is not announced (%s)", approval.id, exc)
    return reply


def announce_failure(ctx: Context, approval: Approval, plan: Plan, reply: Reply) -> None:
    """Queue the failure of approved work for the incident channel of its environment,
    naming requester and approver and linking the card's thread."""
    incidents = ctx.services.incidents
    if incidents is None:
        return
    first = plan.targets[0] if plan.targets else None
    notice = Reply(
        status="error",
        title=f"Failed after approval: {plan.summary}",
        text=f"Requested by {UserRef(approval.requester)}, approved by "
        f"{UserRef(approval.decided_by or '')}, "
        f"{posted_in(approval.channel, approval.message_ts)}\n"
        f"{reply.text}",
    )
    incidents.announce(
        plan.provider,
        first.environment_id if first else approval.environment_id,
        first.environment_name if first else approval.environment_name,
        notice,
        key=f"approval:{approval.id}:failed",
    )


async def resume_approved(ctx: Context, approval: Approval, *, paused: bool = False) -> Reply:
    """Finish approved work a stopped process left unfinished (this process took it over:
    `ApprovalStore.take_over`), or this process's own work `paused` by a locked store,
    or end it with a clear failure; the reply to show.

    Ended without any request: work approved with a version that did not record its
    steps (no runner), work approved more than `resume_within_seconds` ago, and work
    whose channel lost the rights it needs.
    """
    with running(approval.id) as mine:
        if not mine:
            return _already_running()
        return await _resume(ctx, approval, paused)


async def _resume(ctx: Context, approval: Approval, paused: bool) -> Reply:
    verb = ctx.registry.get(approval.verb)
    plan = args_to_plan(approval)
    when = iso_time(approval.decided_at) if approval.decided_at else "?"
    who = f"approved by {UserRef(approval.decided_by or '')} for {UserRef(approval.requester)}"
    header = (
        f"The store was locked by another process while this ran ({who} at {when}); it goes on now."
        if paused
        else f"graphops restarted while running this ({who} at {when})."
    )
    reason: str | None = None
    if verb is None or plan is None:
        reason = "this version cannot run the command it stands for"
    elif approval.runner is None:
        reason = (
            "it was approved before graphops kept the steps of approved work, so whether "
            "it ran is unknown"
        )
    elif time.time() - (approval.decided_at or 0) > ctx.services.resume_within_seconds:
        minutes = round(ctx.services.resume_within_seconds / 60)
        reason = f"it was approved more than {minutes} min ago: too late to resume on its own"
    else:
        decision = decide_targets(
            ctx,
            verb.name,
            plan.role or verb.role or Role.ADMIN,
            plan.destructive,
            plan.targets,
            plan.sources,
        )
        if decision.outcome == "denied":
            reason = f"the channel may not do it any more ({decision.reason})"
    if reason is None and verb is not None and plan is not None:
        reply = await run_approved(ctx, verb, plan, approval, resumed=True)
    else:
        reply = Reply(
            status="error",
            title=f"Approved, but not resumed: {plan.summary if plan else approval.summary}",
            text=f"{reason}. Nothing more was sent; "
            f"{how_to_check(ctx.services.providers, plan.provider if plan else None)} "
            "before asking again.",
        )
        if _end_unrun(ctx, approval, reply) and plan is not None:
            announce_failure(ctx, approval, plan, reply)
    reply.text = f"{header}\n{reply.text}".strip()
    return reply


def _end_unrun(ctx: Context, approval: Approval, reply: Reply) -> bool:
    """End unfinished work as failed without running anything, keeping `reply`."""
    approvals = ctx.services.approvals
    if not approvals.start(approval.id):
        return False
    return approvals.finish(
        approval.id,
        "failed",
        ctx.services.audit.redact(reply.text),
        ctx.services.audit.redact(reply.model_dump_json()),
    )


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
        ("Environment", env_names(plan.targets) or approval.environment_name),
        *([("Data from", env_names(plan.sources))] if plan.sources else []),
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
