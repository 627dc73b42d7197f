"""The GrapheneDB API v1 kind (`graphenedb-v1`): clients.graphenedb_v1.V1Client.

Source: seeds/graphenedb-v1-api.txt and graphenedb-v1-notes.txt. An `api_key`
header; one environment named after the provider; operations read from
`/v1/operations/{id}` (events `{state, createdAt}`) but never listed, so `ops`
shows the operations graphops started (the tracker's history). Imports come
from an S3 `https://` URL the API fetches itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from clients.graphenedb_v1 import PLANS, REGIONS, V1Client
from commands.adapters.base import Catalog, ClientOptions
from commands.archives import url_origin
from commands.context import Context, NeedsChoice
from commands.plan import Plan
from commands.resolve import Found
from commands.targets import client_of, db_plan, fields_text, started_reply
from core.errors import UserError
from core.kinds import ProviderKind
from core.provider import OperationSource, ProviderClient
from core.refs import UserRef
from core.reply import Reply, Table
from core.words import utc_text


def v1_client(ctx: Context, provider: str) -> V1Client:
    """The v1 client of provider `provider`; UserError if it is of another kind."""
    value: V1Client = client_of(ctx, provider, V1Client)
    return value


def size_text(size: int | None) -> str:
    """`12.3 MB`, or `?` when the API did not say."""
    return f"{size / 1e6:.1f} MB" if size else "?"


def import_url(reference: str) -> str:
    """The S3 URL a v1 import needs, or a UserError saying what would work."""
    parsed = urlparse(reference)
    if parsed.scheme != "https" or not parsed.netloc:
        raise UserError(
            "v1 imports from an https:// URL of an S3 object the API can read "
            "(e.g. https://my-bucket.s3.amazonaws.com/graphdb.zip), not a file upload"
        )
    return reference


class V1Adapter:
    """The `graphenedb-v1` kind (see commands/adapters/base.py for each method)."""

    kind = ProviderKind.GRAPHENEDB_V1
    auth_paths: frozenset[str] = frozenset()  # an api_key header, no sign-in request

    def connect(
        self, name: str, base_url: str, credentials: Mapping[str, SecretStr], options: ClientOptions
    ) -> V1Client:
        """A V1Client with `api_key`."""
        return V1Client(name, base_url, credentials["api_key"], **options.kwargs())

    def operation_source(self, client: ProviderClient) -> OperationSource | None:
        """`/v1/operations/{id}` (the database id is not needed)."""
        return client.as_operation_source() if isinstance(client, V1Client) else None

    async def show(self, ctx: Context, plan: Plan) -> Reply:
        """State, plan, version, region, size, counters and Bolt host of a v1 database."""
        db = await v1_client(ctx, plan.provider).database(plan.params["database_id"])
        counters = db.counters
        return Reply(
            title=db.name,
            fields=[
                ("State", db.status.state),
                ("Plan", db.plan or "?"),
                ("Version", db.version or "?"),
                ("Region", db.aws_region or "?"),
                ("Size", f"{size_text(db.current_size)} of {size_text(db.max_size)}"),
                (
                    "Nodes / relationships",
                    f"{counters.nodes} / {counters.relationships}" if counters else "?",
                ),
                ("Bolt host", db.domain_name or "?"),
                ("Id", db.id),
                ("Created", utc_text(db.created_at)),
            ],
        )

    async def catalog(self, ctx: Context, provider: str, which: Catalog) -> list[dict[str, str]]:
        """Versions from the API (every field they carry); plans and regions are the fixed
        lists v1 documents (`id`)."""
        if which == "versions":
            versions = await v1_client(ctx, provider).versions()
            return [fields_text(v.model_dump()) for v in versions]
        values = PLANS if which == "plans" else REGIONS
        return [{"id": value} for value in values]

    async def operations(self, ctx: Context, plan: Plan) -> Reply:
        """The API lists no operations, so the ones graphops started (the tracker's history)."""
        history = ctx.services.history
        rows = history.for_database(plan.provider, plan.params["database_id"]) if history else []
        table = Table(columns=["Operation", "What", "State", "By", "Started"])
        for op in rows:
            started = utc_text(op.started_at)
            table.rows.append(
                [op.operation_id, op.label, op.state, str(UserRef(op.requester)), started]
            )
        table.note = "the v1 API lists no operations; these are the ones graphops started"
        return Reply(title=f"Operations of {plan.params['database_name']}", tables=[table])

    def create_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """`region=` is required; region and plan must be ones v1 knows."""
        region = values.get("region")
        if not region:
            raise NeedsChoice(
                f"a v1 database needs region= (one of: {', '.join(REGIONS)})",
                "region",
                [(r, r) for r in REGIONS],
            )
        if region not in REGIONS:
            raise UserError(f"unknown region {region!r}; v1 regions: {', '.join(REGIONS)}")
        if values["plan"] not in PLANS or values["plan"] == "cluster":
            raise UserError(f"unknown plan {values['plan']!r}; v1 plans: {', '.join(PLANS)}")
        return {"region": region}

    async def create(self, ctx: Context, plan: Plan) -> Reply:
        """`POST /v1/databases` with name, version, region and plan."""
        p = plan.params
        accepted = await v1_client(ctx, plan.provider).create_database(
            p["database_name"], p["version"], p["region"], p["plan"]
        )
        return started_reply(ctx, plan, f"Creating {p['database_name']}", accepted)

    def restart_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """v1 restarts have no reset flag."""
        return {}

    async def restart(self, ctx: Context, plan: Plan) -> Reply:
        """`PUT /v1/databases/{id}/restart`."""
        accepted = await v1_client(ctx, plan.provider).restart(plan.params["database_id"])
        return started_reply(ctx, plan, f"Restarting {plan.params['database_name']}", accepted)

    def terminate_params(self, ctx: Context, found: Found) -> dict[str, Any]:
        """No safety snapshot: v1 backups are a separate command (`backup`)."""
        return {}

    async def terminate(self, ctx: Context, plan: Plan) -> Reply:
        """`DELETE /v1/databases/{id}`."""
        accepted = await v1_client(ctx, plan.provider).delete_database(plan.params["database_id"])
        return started_reply(ctx, plan, f"Terminating {plan.params['database_name']}", accepted)

    async def plan_import(self, ctx: Context, found: Found, values: dict[str, Any]) -> Plan:
        """The S3 URL to import from (no upload: the API fetches it)."""
        url = import_url(values["file"])
        plan = db_plan(
            "import",
            found,
            f"import {url_origin(url)} into {found.database.name} in {found.scope.label}, "
            "replacing its data",
            file=url,
        )
        plan.destructive = True
        return plan

    async def import_archive(self, ctx: Context, plan: Plan) -> Reply:
        """`PUT /v1/databases/{id}/import` with the URL."""
        accepted = await v1_client(ctx, plan.provider).import_url(
            plan.params["database_id"], plan.params["file"]
        )
        return started_reply(ctx, plan, f"Importing into {plan.params['database_name']}", accepted)


ADAPTER = V1Adapter()
