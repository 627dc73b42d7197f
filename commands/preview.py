"""Dry-runs: what a command would do, from its real code run against recording clients.

`plan <command>` and `<command> dry-run=true` answer with `plan_reply`;
approval cards carry the same `preview` table. The verb's `execute` runs on
providers built by `Services.dry_run_providers` over a `RecordingTransport`
(clients/dryrun.py), so the table lists exactly the calls the real run would
make (bodies redacted, sign-in requests left out), and nothing is sent.
"""

from __future__ import annotations

import copy
import dataclasses

from clients.dryrun import RecordingTransport, describe_body
from clients.errors import ApiError
from commands.adapters import ADAPTERS
from commands.archives import OpenedFile
from commands.context import Context
from commands.grammar import GrammarError, ParsedCommand
from commands.plan import Plan, env_names, safety_nets
from commands.registry import Verb
from commands.resolve import Resolver
from core.errors import UserError
from core.invocation import Invocation
from core.mutations import watching_mutations
from core.reply import Reply, Table
from permissions.policy import Decision

# Token requests are how a client signs in, not what a command does: previews leave them out.
AUTH_PATHS = frozenset(path for kind in ADAPTERS.values() for path in kind.auth_paths)


async def preview(ctx: Context, verb: Verb, plan: Plan) -> Table:
    """The API calls `plan` would make (Method, Path, redacted Body); sends nothing."""
    table = Table(columns=["Method", "Path", "Body"])
    services = ctx.services
    factory = services.dry_run_providers
    if factory is None or verb.execute is None:
        table.note = "no preview available"
        return table
    recorder = RecordingTransport()
    providers = factory(recorder)
    dry = dataclasses.replace(
        services, providers=providers, open_file=_no_file, resolver=Resolver(ttl_seconds=0)
    )
    try:
        # Nothing is sent: its requests are no mutations to write down (core.mutations).
        with watching_mutations(_nothing_sent):
            await verb.execute(
                Context(ctx.invocation, dry, ctx.registry, dry_run=True), copy.deepcopy(plan)
            )
    except (ApiError, UserError) as exc:
        table.note = f"the preview stopped early: {exc}"
    finally:
        for provider in providers.values():
            await provider.client.aclose()
    redact = services.audit.redact
    for call in recorder.calls:
        if call.path not in AUTH_PATHS:
            table.rows.append([call.method, call.path, redact(describe_body(call.body))])
    if not table.rows and table.note is None:
        table.note = "no API call"
    return table


OUTCOMES = {
    "allowed": "would run now",
    "needs_approval": "would need an approval",
    "denied": "would be refused",
}


async def plan_reply(
    ctx: Context,
    verb: Verb,
    plan: Plan,
    decision: Decision,
    parts: tuple[tuple[str, Decision], ...] = (),
) -> Reply:
    """The answer to `plan <command>`: environment, decision, safety nets and the calls.

    A plan that copies data out of other environments (`plan.sources`) also shows
    the decision of each part (`Decision (source production)`, `Decision (target
    staging)`), so both rights can be read before anything runs.
    """
    fields = [
        ("Environment", env_names(plan.targets) or "-"),
        *([("Data from", env_names(plan.sources))] if plan.sources else []),
        ("Decision", f"{OUTCOMES[decision.outcome]}: {decision.reason}"),
    ]
    if plan.sources:
        fields += [
            (f"Decision ({label})", f"{OUTCOMES[part.outcome]}: {part.reason}")
            for label, part in parts
        ]
    fields += plan.details
    nets = safety_nets(plan)
    if nets:
        fields.append(("Safety nets", nets))
    if decision.outcome == "denied":
        calls = Table(columns=["Method", "Path", "Body"], note="nothing would be sent")
    else:
        calls = await preview(ctx, verb, plan)
    return Reply(
        status="info",
        title=f"Plan: {plan.summary}",
        text="Nothing was sent; this is what the command would do.",
        fields=fields,
        tables=[calls],
        visibility="ephemeral",
    )


def dry_run_form(parsed: ParsedCommand) -> tuple[ParsedCommand, bool]:
    """`plan <command>` or `<command> dry-run=true` -> (the command, True); GrammarError
    for a bad `dry-run=` value or a `plan` without a command."""
    options = dict(parsed.options)
    flag = options.pop("dry_run", None)
    dry = flag is not None and flag.lower() in ("true", "yes", "1", "on")
    if flag is not None and not dry and flag.lower() not in ("false", "no", "0", "off"):
        raise GrammarError(f"dry-run= takes true or false, not {flag!r}")
    if parsed.verb == "plan":
        if not parsed.args:
            raise GrammarError("plan needs a command to preview, e.g. `plan terminate sandbox-db`")
        verb, *rest = parsed.args
        return ParsedCommand(verb.lower(), tuple(rest), options, parsed.text, verb), True
    return ParsedCommand(parsed.verb, parsed.args, options, parsed.text, parsed.typed_verb), dry


def _nothing_sent(provider: str, method: str, path: str) -> None:
    """The mutation hook of a preview: its recording clients send nothing."""


def _no_file(invocation: Invocation, reference: str) -> OpenedFile:
    """Dry-runs never read the file they would upload."""
    raise UserError("a dry run reads no file")
