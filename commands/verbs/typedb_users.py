"""TypeDB server users: `users`, `user add|passwd|delete`.

Source: seeds/typedb-http-api.txt (`/v1/users`). Passwords are never typed in
the channel: `user add` and `user passwd` answer with a `SecretPrompt`, the
transport collects the password privately (a Slack modal, no-echo in the
shell) and runs the same line again with `Invocation.secret` set. A password
typed anyway (an extra word, or `password=`) is refused without being echoed
or audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from commands.adapters.typedb import typedb_client
from commands.context import Context
from commands.plan import Plan
from commands.registry import Rights, UsageError, Verb, verb
from commands.targets import TYPEDB, single_scope, target_of
from commands.verbs.typedb import ServerOption, check_name, subcommand
from core.reply import Reply, SecretPrompt, Table, error
from permissions.roles import Role

_SECRET_OPTIONS = frozenset({"password", "passwd", "pwd", "pass", "secret"})


class UserOptions(ServerOption):
    """Options of `user`; a password typed as an option is refused before anything runs."""

    @model_validator(mode="before")
    @classmethod
    def _no_typed_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and _SECRET_OPTIONS & {str(k).lower() for k in data}:
            raise PydanticCustomError(
                "typed_password",
                "a password is never typed in the channel (nothing was sent; if others "
                "saw it, choose another one). Run the command without it and enter the "
                "password in the private prompt",
            )
        return data


@dataclass(frozen=True)
class UserVerb(Verb):
    """`user`: words after the name of `add`/`passwd` may be a password typed by mistake,
    so they are refused without being repeated back."""

    def bind(self, args: tuple[str, ...], options: dict[str, str]) -> dict[str, Any]:
        """Refuse extra words after `add`/`passwd <name>` without echoing them; else as Verb."""
        if len(args) > 2 and args[0].lower() in ("add", "passwd"):
            raise UsageError(
                f"unexpected words after the user name ({len(args) - 2} not shown: a password "
                "is never typed in the channel; if others saw it, choose another one). "
                f"Usage: {self.usage}"
            )
        return super().bind(args, options)


async def _server_plan(ctx: Context, verb: str, env: str | None, summary: str) -> Plan:
    scope = await single_scope(ctx, TYPEDB, Role.ADMIN, env)
    return Plan(
        verb=verb,
        provider=scope.provider.name,
        targets=[target_of(scope)],
        params={"environment_id": scope.provider.name},
        summary=summary.format(server=scope.provider.name),
    )


async def prepare_users(ctx: Context, values: dict[str, Any]) -> Plan:
    """The one server whose users to list (admin)."""
    return await _server_plan(ctx, "users", values.get("env"), "list the users of {server}")


@verb(
    "users",
    role=Role.ADMIN,
    prepare=prepare_users,
    kinds=TYPEDB,
    options=ServerOption,
    example="users",
    group="TypeDB",
)
async def list_users(ctx: Context, plan: Plan) -> Reply:
    """List the users of a TypeDB server"""
    users = await typedb_client(ctx, plan.provider).users()
    table = Table(columns=["User"], rows=[[user.username] for user in users])
    return Reply(title=f"Users of {plan.provider}", tables=[table])


_USER_ACTIONS = {
    "add": "add user",
    "passwd": "change the password of user",
    "delete": "delete user",
}


async def prepare_user(ctx: Context, values: dict[str, Any]) -> Plan:
    """`add`, `passwd` or `delete` a user on the one server meant (admin; delete: approval)."""
    action = subcommand(ctx)
    name = check_name(values["name"], "username")
    plan = await _server_plan(
        ctx, "user", values.get("env"), f"{_USER_ACTIONS[action]} {name} on {{server}}"
    )
    plan.params.update(action=action, username=name)
    if action == "delete":
        plan.destructive = True
        plan.details = [("User", name)]
    return plan


@verb(
    "user",
    "add <name>",
    role=Role.ADMIN,
    prepare=prepare_user,
    kinds=TYPEDB,
    options=UserOptions,
    grammars=("add <name>", "passwd <name>", "delete <name>"),
    cls=UserVerb,
    example="user add reporting",
    group="TypeDB",
    rights=(
        Rights(form="add|passwd <name>", role=Role.ADMIN),
        Rights(form="delete <name>", role=Role.ADMIN, approval=True),
    ),
)
async def user(ctx: Context, plan: Plan) -> Reply:
    """Add a user, change a password (asked privately), or delete a user

    Add, re-password or delete a user; the password comes only from `Invocation.secret`.
    """
    action, name = plan.params["action"], plan.params["username"]
    api = typedb_client(ctx, plan.provider)
    if action == "delete":
        await api.delete_user(name)
        return Reply(title=f"Deleted user {name}", text=f"On {plan.provider}.")
    secret = ctx.invocation.secret
    if secret is None:
        return Reply(
            status="info",
            title=f"Password for {name}",
            text="Enter the password in the private prompt; it is never typed in the channel.",
            visibility="ephemeral",
            secret_prompt=SecretPrompt(label=f"Password for {name}", command=ctx.invocation.text),
        )
    if not secret.get_secret_value():
        return error("The password is empty; nothing was sent.")
    if action == "add":
        await api.create_user(name, secret)
        return Reply(title=f"Added user {name}", text=f"On {plan.provider}.")
    await api.update_password(name, secret)
    return Reply(title=f"Changed the password of {name}", text=f"On {plan.provider}.")
