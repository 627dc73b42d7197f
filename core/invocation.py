"""One command as a transport delivers it: who typed what, where, and how it arrived."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class Invocation:
    """One command as a transport delivers it.

    `user` and `channel` are Slack ids (`U…`, `C…`; a shell user name in the
    shell); `text` is the command line as typed (`/gdb pause orders-db`);
    `user_groups` the ids (`S…`) of the groups the user belongs to that matter
    in this channel (approvers); `transport` is `slack`, `shell` or `schedule`.
    """

    user: str
    channel: str
    text: str
    user_groups: frozenset[str] = frozenset()
    transport: str = "shell"
    # A secret collected privately by the transport (see Reply.secret_prompt); never logged.
    secret: SecretStr | None = None
