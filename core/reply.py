"""The transport-neutral answer to a command.

A `Reply` says what to show, not how: the Slack transport renders it as Block
Kit, the shell as coloured text. Buttons are `Action`s whose `command` is a line
the same command layer accepts (`approve <id>`), so any transport can offer them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["ok", "info", "pending", "denied", "error"]
Visibility = Literal["channel", "ephemeral"]


class Table(BaseModel):
    """Rows of text under named columns."""

    columns: list[str]
    rows: list[list[str]] = []
    note: str | None = None  # e.g. "showing 20 of 132"


class Action(BaseModel):
    """A button: its label, the command line it stands for, and what a click carries.

    `action_id` names what the button does (`approval.approve`, `approval.deny`,
    or `command` for a plain command line) and `value` is all a click sends
    (an approval id); the transport looks everything else up server-side.
    """

    label: str
    command: str
    style: Literal["primary", "danger"] | None = None
    action_id: str = "command"
    value: str = ""


class OperationRef(BaseModel):
    """An async operation that a tracker can follow to its end."""

    provider: str
    database_id: str
    operation_id: str
    label: str
    environment_id: str = ""
    environment_name: str = ""
    verb: str = ""


class SecretPrompt(BaseModel):
    """Ask the requester for a secret privately (Slack modal, or no-echo prompt in the shell).

    The transport collects the value and runs `command` again with the secret
    attached to the Invocation; the secret is never part of any text.
    """

    label: str
    command: str


class Option(BaseModel):
    """One answer of a `Choice`: what it shows, the value, and the command line it stands for."""

    label: str
    value: str
    command: str


class Choice(BaseModel):
    """A question for one missing argument, answered by picking one of `options`.

    The options are the values the person asking may act on (commands/choices.py).
    Transports show it as a menu (Slack: a static_select of up to 100 options, an
    external_select with search beyond) or as numbered command lines (the shell); a
    pick runs its `command` through the pipeline exactly like a typed command, and
    a transport refuses a pick that is not one of the listed options.
    """

    argument: str
    prompt: str
    options: list[Option]


class Attachment(BaseModel):
    """Long text sent as a file (Slack snippet) instead of flooding the channel."""

    filename: str
    content: str
    title: str = ""


class Reply(BaseModel):
    """What a command answers."""

    status: Status = "ok"
    title: str | None = None
    # Who asked for this and what they typed (may hold refs), for transports that post
    # where others read: Slack shows it as a small line under the title.
    context: str | None = None
    text: str = ""
    fields: list[tuple[str, str]] = []
    tables: list[Table] = []
    actions: list[Action] = []
    visibility: Visibility = "channel"
    # Shown only to the requester (ephemeral / DM), never to the channel or the audit log.
    private_text: str | None = None
    secret_prompt: SecretPrompt | None = None
    attachment: Attachment | None = None
    choice: Choice | None = None
    operations: list[OperationRef] = Field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True for a refusal or an error (nothing, or not all, was done)."""
        return self.status in ("denied", "error")


def error(text: str, *, title: str = "Cannot do that") -> Reply:
    """An error only the requester sees, under `title` (never empty)."""
    return Reply(status="error", title=title or "Cannot do that", text=text, visibility="ephemeral")


def denied(text: str) -> Reply:
    """A refusal with its reason, only for the requester."""
    return Reply(status="denied", title="Not allowed", text=text, visibility="ephemeral")
