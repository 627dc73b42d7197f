"""The GrapheneDB Console API kind (`graphenedb`): clients.graphenedb.ConsoleClient.

Source: seeds/graphenedb-console-api.txt. OAuth2 client credentials (a JWT
valid 1 h, renewed by the client); environments with many databases; async
operations with steps (`/operations/{id}`), which the client reads itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import SecretStr

from clients.graphenedb import Archive, ConsoleClient, Operation
from commands.adapters.base import Catalog, ClientOptions
from commands.archives import KeptArchive
from commands.context import Context
from commands.plan import Plan
from commands.resolve import Found
from commands.safety import safety_snapshot, wants_safety_snapshot, with_safety
from commands.targets import (
    client_of,
    db_plan,
    fields_text,
    flags,
    new_database_reply,
    started_reply,
)
from core.errors import UserError
from core.kinds import ProviderKind
from core.provider import OperationSource, ProviderClient
from core.reply import Reply, Table
from core.words import utc_text


def console_client(ctx: Context, provider: str) -> ConsoleClient:
    """The Console client of provider `provider`; UserError if it is of another kind."""
    value: ConsoleClient = client_of(ctx, provider, ConsoleClient)
    return value


def _steps_text(op: Operation) -> str:
    return " > ".join(
        f"{s.name}{'' if s.status in (None, 'finished') else f' ({s.status})'}" for s in op.steps
    )


class ConsoleAdapter:
    """The `graphenedb` kind (see commands/adapters/base.py for each method)."""

    kind = ProviderKind.GRAPHENEDB
    auth_paths = frozenset({ConsoleClient.TOKEN_PATH})

    def connect(
        self, name: str, base_url: str, credentials: Mapping[str, SecretStr], options: ClientOptions
    ) -> ConsoleClient:
        """A ConsoleClient with `client_id` and `client_secret`."""
        return ConsoleClient(
            name,
            base_url,
            credentials["client_id"],
            credentials["client_secret"],
            **options.kwargs(),
        )

    def operation_source(self, client: ProviderClient) -> OperationSource | None:
        """The client reads its operations itself (`GET .../operations/{id}`)."""
        return client if isinstance(client, ConsoleClient) else None

    async def show(self, ctx: Context, plan: Plan) -> Reply:
        """State, flags, plan, version, domain and health of a Console database."""
        db = await console_client(ctx, plan.provider).database(plan.params["database_id"])
        status = db.status
        health = status.last_health_check
        return Reply(
            title=f"{db.name}",
            fields=[
                ("State", status.state),
                ("Flags", flags(db) or "none"),
                ("Plan", db.plan or "?"),
                ("Version", str(db.version or "?")),
                ("Domain", db.domain_name or "?"),
                (
                    "Health",
                    f"{health.status} ({health.last_check_seconds_ago}s ago)" if health else "?",
                ),
                ("Id", db.id),
                ("Created", utc_text(db.created_at)),
            ],
        )

    async def catalog(self, ctx: Context, provider: str, which: Catalog) -> list[dict[str, str]]:
        """The catalog's entries with every field they carry (no document names them)."""
        api = console_client(ctx, provider)
        items = await {"versions": api.versions, "plans": api.plans, "regions": api.regions}[
            which
        ]()
        return [fields_text(item.model_dump()) for item in items]

    async def operations(self, ctx: Context, plan: Plan) -> Reply:
        """The database's operations as the API lists them, newest first, up to `limit`."""
        ops = await console_client(ctx, plan.provider).operations(plan.params["database_id"])
        limit = int(plan.params.get("limit") or 10)
        table = Table(columns=["Operation", "Type", "Status", "Steps", "Started"])
        for op in ops[:limit]:
            table.rows.append(
                [
                    op.id,
                    op.operation_type or "?",
                    op.status,
                    _steps_text(op),
                    utc_text(op.started_at),
                ]
            )
        if len(ops) > limit:
            table.note = f"showing {limit} of {len(ops)}; add limit=N for more"
        if not ops:
            table.note = "no operations"
        return Reply(title=f"Operations of {plan.params['database_name']}", tables=[table])

    def create_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Nothing beyond plan, version, edition and extras."""
        return {}

    async def create(self, ctx: Context, plan: Plan) -> Reply:
        """`POST` a new database; its operation is followed under it (its id from the
        answer, else found by name in the environment)."""
        p = plan.params
        started = await console_client(ctx, plan.provider).create_database(
            p["environment_id"],
            p["database_name"],
            p["plan"],
            p["version"],
            p["edition"],
            p["extras"],
        )
        return await new_database_reply(ctx, plan, f"Creating {p['database_name']}", started)

    def restart_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """`reset` (true by default: drop connections at once)."""
        return {"reset": values["reset"]} if "reset" in values else {}

    async def restart(self, ctx: Context, plan: Plan) -> Reply:
        """Restart, with `reset` if the plan has it."""
        api = console_client(ctx, plan.provider)
        database_id = plan.params["database_id"]
        if "reset" in plan.params:
            started = await api.restart(database_id, reset=plan.params["reset"])
        else:
            started = await api.restart(database_id)
        return started_reply(ctx, plan, f"Restarting {plan.params['database_name']}", started)

    def terminate_params(self, ctx: Context, found: Found) -> dict[str, Any]:
        """Whether a safety snapshot is taken first (commands/safety.py)."""
        return {"snapshot_first": wants_safety_snapshot(ctx, found.scope)}

    async def terminate(self, ctx: Context, plan: Plan) -> Reply:
        """The safety snapshot if planned (nothing else runs if it fails), then `DELETE`."""
        safety = await safety_snapshot(ctx, plan)
        started = await console_client(ctx, plan.provider).terminate(plan.params["database_id"])
        reply = started_reply(ctx, plan, f"Terminating {plan.params['database_name']}", started)
        return with_safety(reply, safety)

    async def plan_import(self, ctx: Context, found: Found, values: dict[str, Any]) -> Plan:
        """An archive the transport may read (an https URL; a local path in the shell),
        read now (commands/archives.py): a download is spooled, a local file hashed, and
        the plan (so the approval card) records its size and sha256. A dry run reads
        nothing."""
        open_file, archives = ctx.services.open_file, ctx.services.archives
        if open_file is None or archives is None:
            raise UserError("this bot cannot read archives for import")
        opened = open_file(ctx.invocation, values["file"])
        plan = db_plan(
            "import",
            found,
            f"import {opened.name} from {opened.origin} into {found.database.name} "
            f"in {found.scope.label}, replacing its data",
            archive={"name": opened.name},
        )
        plan.destructive = True
        if ctx.dry_run:
            plan.details = [("Archive", f"{opened.name} from {opened.origin} (not read: dry run)")]
            return plan
        kept = await archives.keep(opened)
        plan.params["archive"] = kept.to_params()
        plan.details = kept.details()
        return plan

    async def import_archive(self, ctx: Context, plan: Plan) -> Reply:
        """Check the archive is the one the plan recorded, then upload it (multipart, with
        a Content-Length); a spooled download is removed afterwards, whatever the answer."""
        database_id, name = plan.params["database_id"], plan.params["database_name"]
        api = console_client(ctx, plan.provider)
        if ctx.dry_run:  # a preview: the request is recorded, the file is not read
            name_of = (plan.params.get("archive") or {}).get("name") or "archive"
            dry = Archive(str(name_of), 0, _empty())
            started = await api.import_archive(database_id, dry)
            return started_reply(ctx, plan, f"Importing into {name}", started)
        archives = ctx.services.archives
        if archives is None:
            raise UserError("this bot cannot read archives for import")
        kept = KeptArchive.from_params(plan.params.get("archive"))
        try:
            archive = await archives.open(kept)
            started = await api.import_archive(database_id, archive)
        finally:
            archives.release(kept)
        reply = started_reply(ctx, plan, f"Importing into {name}", started)
        reply.fields.append(("Archive", f"{kept.name}, {kept.size:,} bytes, sha256 {kept.sha256}"))
        return reply


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


ADAPTER = ConsoleAdapter()
