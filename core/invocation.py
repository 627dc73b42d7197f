"""One command as a transport delivers it: who typed what, where, and how it arrived."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class Workspace:
    """A Slack workspace (`team_id`, `T…`) and the Enterprise organization it belongs to
    (`enterprise_id`, `E…`; "" when it belongs to none or Slack did not say).

    Slack names the actor's workspace in every request: a slash command's `team_id`
    and `enterprise_id`, an interaction's `user.team_id` (an `E…` id for a user of an
    Enterprise organization; docs.slack.dev/reference/interaction-payloads/
    block_actions-payload), an event's `user_team` (in Slack Connect channels). The
    workspace that installed graphops is what `auth.test` answers.
    """

    team_id: str = ""
    enterprise_id: str = ""

    @property
    def label(self) -> str:
        """`T0HOME`, `E0ORG`, or `T0HOME (E0ORG)`: for reasons and audit rows."""
        if self.team_id and self.enterprise_id:
            return f"{self.team_id} ({self.enterprise_id})"
        return self.team_id or self.enterprise_id or "an unknown workspace"


@dataclass(frozen=True)
class Invocation:
    """One command as a transport delivers it.

    `user` and `channel` are Slack ids (`U…`, `C…`; a shell user name in the
    shell); a `D…` channel is a direct message, where the user's personal
    bindings apply. `text` is the command line as typed (`/gdb pause orders-db`);
    `user_groups` the ids (`S…`) of the user groups the user belongs to among those
    the channel's bindings name (as approvers or in `users=`), and
    `unresolved_groups` those whose membership could not be checked in time (Slack
    slow or refusing: the person is then not counted as a member, and told why);
    `transport` is `slack`, `shell` or `schedule`.

    `workspace` is the actor's Slack workspace and organization, `home` the one
    that installed graphops (both None outside Slack: the shell and the scheduler
    are local); permissions.policy.admit decides whether the actor may act at all.
    """

    user: str
    channel: str
    text: str
    user_groups: frozenset[str] = frozenset()
    transport: str = "shell"
    # A secret collected privately by the transport (see Reply.secret_prompt); never logged.
    secret: SecretStr | None = None
    unresolved_groups: frozenset[str] = frozenset()
    workspace: Workspace | None = None
    home: Workspace | None = None
