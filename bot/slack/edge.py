"""The inbound edge: what Slack sends, read once and checked before any listener runs.

- `parse_body`: a request body as Slack sends it (api.slack.com/interactivity/handling:
  slash commands are form fields; interactivity is one form field `payload` holding
  JSON; events are JSON). slack_bolt 1.30 decides by substring instead (any form body
  containing the text "payload" is read as an interactivity payload, so
  `/gdb show payload-api` reached no listener: slack_bolt/request/internals.py,
  `parse_body`); `SlackRequest` is Bolt's request with this parser.
- `payload_problem`: a signed body can still be malformed (`actions: []`, a view
  without `type`, `event: "x"`, JSON nested a thousand deep); it is answered 400 here,
  never a 500 with a traceback.
- `command_text`: slash-command text decoded exactly once. Slack sends `&`, `<`, `>` as
  `&amp;`, `&lt;`, `&gt;`, and with `should_escape: true` (manifest.yml) mentions as
  `<@U…|name>`, `<#C…|name>`, `<!subteam^S…|@handle>` and links as `<url|label>`
  (api.slack.com/interactivity/slash-commands). Mentions become the bare ids the
  command layer takes, links what was typed, then entities are decoded.
- `Origin`: who asked, where, and how to answer them (response_url, trigger, thread), and
  their Slack workspace (`actor_workspace`) beside the one that installed graphops
  (`installation`, Bolt's `auth.test` result): permissions.policy.admit decides whether
  they may act at all.

Who acts, by payload (Slack Connect: a shared channel holds people of several
organizations, and the app sees all of them):
- slash commands: `team_id` and `enterprise_id` (docs.slack.dev, slash commands: "These
  IDs provide context about where the user was in Slack when they triggered your app's
  command"). GUESS: in a shared channel they are the invoking user's workspace (the only
  workspace fields a slash command carries);
- block_actions, block_suggestion, view_submission: `user.team_id`, the user's own
  workspace, "an enterprise organization ID (which starts with an E) instead of team ID
  (which starts with a T), when using an Enterprise organization"
  (docs.slack.dev/reference/interaction-payloads/block_suggestion-payload); `team` is
  the workspace the interaction came from and may be null for org-wide installs, and the
  payload's `enterprise` is the installed app's organization, not the user's;
- events (`app_mention`, `message`): `event.user_team` in shared channels (a `T…` or
  `E…`), else `event.team`, else the envelope's `team_id` (bolt-python
  `extract_actor_team_id`, slack_bolt/request/internals.py).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from core import refs
from core.invocation import Workspace

MAX_DEPTH = 24  # Slack's payloads nest about 8 deep (view state values)
HANDLED_TYPES = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "event_callback",
        "url_verification",
    }
)


class MalformedPayload(ValueError):
    """A body that is not what Slack sends; the message says what was wrong."""


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedPayload("the JSON is nested too deeply") from None
    except ValueError:
        raise MalformedPayload("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload("the JSON is not an object")
    if _depth(data) > MAX_DEPTH:
        raise MalformedPayload("the JSON is nested too deeply")
    return data


def parse_body(raw: str, content_type: str | None) -> dict[str, Any]:
    """The fields of a request body (MalformedPayload when it is not Slack's shape)."""
    if not raw:
        return {}
    if content_type == "application/json":
        return _json_object(raw)
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in fields and "command" not in fields:
        return _json_object(fields["payload"])
    return fields


class SlackRequest(AsyncBoltRequest):
    """Bolt's request, its body read by `parse_body` (also in the copies lazy listeners
    get). MalformedPayload from the constructor for a body Slack would not send."""

    def __init__(
        self,
        *,
        body: str | dict[str, Any],
        query: Any = None,
        headers: Any = None,
        context: dict[str, Any] | None = None,
        mode: str = "http",
    ) -> None:
        super().__init__(
            body="" if isinstance(body, str) else body,
            query=query,
            headers=headers,
            context=context,
            mode=mode,
        )
        if isinstance(body, str):
            self.raw_body = body
            self.body = parse_body(body, self.content_type)
            self.context = build_async_context(AsyncBoltContext(context or {}), self.body)

    def to_copyable(self) -> SlackRequest:
        return SlackRequest(
            body=self.raw_body if self.mode == "http" else self.body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


# -- shapes ----------------------------------------------------------------------------------


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def _slash_problem(body: dict[str, Any]) -> str | None:
    for name in ("command", "user_id", "channel_id"):  # Slack always sends all three
        if not isinstance(body.get(name), str) or not body[name]:
            return f"a slash command needs `{name}`"
    for name in ("text", "response_url", "trigger_id"):
        if not isinstance(body.get(name, ""), str):
            return f"`{name}` must be a string"
    return None


def _interactive_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    if not _id_of(body.get("user")):
        return f"a {kind} payload needs `user.id`"
    for name in ("trigger_id", "response_url"):
        if not isinstance(body.get(name, ""), str):
            return f"`{name}` must be a string"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "`actions` must be a non-empty list"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "every action needs an `action_id`"
            if not isinstance(action.get("value", ""), str):
                return "an action `value` must be a string"
            selected = action.get("selected_option")
            if selected is not None and (
                not isinstance(selected, dict) or not isinstance(selected.get("value"), str)
            ):
                return "a `selected_option` must be an object with a string `value`"
        if "channel" in body and body["channel"] is not None and not _id_of(body["channel"]):
            return "`channel` must be an object with an `id`"
        return None
    if kind == "block_suggestion":
        for name in ("action_id", "block_id", "value"):
            if not isinstance(body.get(name), str):
                return f"a block_suggestion needs a string `{name}`"
        return None
    view = body.get("view")
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        return "a view payload needs `view.type`"
    if not isinstance(view.get("callback_id", ""), str):
        return "`view.callback_id` must be a string"
    if not isinstance(view.get("private_metadata", ""), str):
        return "`view.private_metadata` must be a string"
    state = view.get("state", {})
    if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
        return "`view.state.values` must be an object"
    return None


def payload_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with a parsed body, or None when a listener may read it."""
    if "command" in body and "type" not in body:
        return _slash_problem(body)
    kind = body.get("type")
    if kind is None:
        return "a slash command needs `command`; an interaction or an event needs `type`"
    if kind not in HANDLED_TYPES:
        return f"unsupported payload type {str(kind)[:40]!r}"
    if kind == "url_verification":
        return None if isinstance(body.get("challenge"), str) else "`challenge` is missing"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "`event` must be an object with a `type`"
        for name in ("user", "channel", "text", "ts", "thread_ts", "user_team", "team"):
            if not isinstance(event.get(name, ""), str):
                return f"`event.{name}` must be a string"
        return None
    return _interactive_problem(body)


# -- text ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def _token(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "#")):
        return target[1:]  # <@U123|bob> -> U123, <#C123|db-incidents> -> C123
    if target.startswith("!subteam^"):
        return target.split("^", 1)[1]  # <!subteam^S123|@dba> -> S123
    if target.startswith("!"):
        return "@" + (label or target[1:]).lstrip("@")  # <!here> -> @here
    return label or target  # a link: what was typed


def command_text(raw: str) -> str:
    """Slash-command text as typed, with mentions as bare ids (see the module docstring)."""
    text = _TOKEN.sub(_token, raw)
    text = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)
    return refs.strip_markers(text)


# -- who asked --------------------------------------------------------------------------------

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


@dataclass
class Origin:
    """Who asked and how to answer them: the channel (may be empty: App Home, a modal),
    the response_url (5 uses in 30 minutes, api.slack.com/interactivity/handling), the
    trigger for a modal, what they typed or clicked (for the requester line), the thread
    to answer in (a mention's), how it arrived (`via`: `slash`, `button`, `mention`,
    `dm`, `modal`), and who they are: their workspace (`workspace`, None when Slack did
    not say) and the one that installed graphops (`home`)."""

    user: str
    channel: str = ""
    response_url: str = ""
    trigger_id: str = ""
    command: str = ""
    received_at: float = field(default_factory=time.monotonic)
    response_uses: int = 0
    thread_ts: str | None = None
    via: str = "slash"
    workspace: Workspace | None = None
    home: Workspace | None = None

    @property
    def direct(self) -> bool:
        """A direct message with the bot (answers there are for the person alone)."""
        return self.via == "dm"

    def response_url_usable(self) -> bool:
        """Whether the response_url may still answer (not used up, not expired)."""
        return (
            bool(self.response_url)
            and self.response_uses < RESPONSE_URL_USES
            and time.monotonic() - self.received_at < RESPONSE_URL_SECONDS
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _workspace(team: str, enterprise: str) -> Workspace:
    """A workspace from a team field that may hold a `T…` or an `E…` id. A request from
    Slack that names none is an empty Workspace, never None (None is a local transport,
    which `permissions.policy.admit` admits): admit refuses it, in doubt."""
    if team.startswith("E"):
        team, enterprise = "", enterprise or team
    return Workspace(team_id=team, enterprise_id=enterprise)


def installation(context: Any) -> Workspace | None:
    """The workspace (and organization) that installed graphops: Bolt's authorize result,
    from `auth.test` (slack_bolt's SingleTeamAuthorization, cached)."""
    result = getattr(context, "authorize_result", None)
    if result is None:
        return None
    return _workspace(_text(result.get("team_id")), _text(result.get("enterprise_id")))


def slash_workspace(body: dict[str, Any]) -> Workspace:
    """The invoking user's workspace in a slash command (see the module docstring)."""
    return _workspace(_text(body.get("team_id")), _text(body.get("enterprise_id")))


def interaction_workspace(body: dict[str, Any]) -> Workspace:
    """The acting user's workspace in an interaction payload: `user.team_id`, with the
    organization of `team` when it is that same workspace."""
    user, team = _object(body.get("user")), _object(body.get("team"))
    theirs = _text(user.get("team_id"))
    if not theirs:  # GUESS: older payloads without user.team_id name the user's team only
        return _workspace(_text(team.get("id")), _text(team.get("enterprise_id")))
    enterprise = _text(team.get("enterprise_id")) if team.get("id") == theirs else ""
    return _workspace(theirs, enterprise)


def event_workspace(body: dict[str, Any]) -> Workspace:
    """The acting user's workspace in an Events API envelope (see the module docstring)."""
    event = _object(body.get("event"))
    team = _text(event.get("user_team")) or _text(event.get("team")) or _text(body.get("team_id"))
    enterprise = _text(body.get("enterprise_id")) if team == body.get("team_id") else ""
    return _workspace(team, enterprise)


def slash_origin(body: dict[str, Any], home: Workspace | None = None) -> Origin:
    """The Origin of a (checked) slash command body."""
    return Origin(
        user=str(body.get("user_id") or ""),
        channel=str(body.get("channel_id") or ""),
        response_url=str(body.get("response_url") or ""),
        trigger_id=str(body.get("trigger_id") or ""),
        command=command_text(str(body.get("text") or "")),
        workspace=slash_workspace(body),
        home=home,
    )


def action_origin(body: dict[str, Any], home: Workspace | None = None) -> tuple[Origin, str]:
    """(Origin, value of the clicked button, or of the option picked in a select menu) of
    a (checked) block_actions payload."""
    actions = body.get("actions") or [{}]
    action = actions[0] if isinstance(actions[0], dict) else {}
    selected = action.get("selected_option")
    value = selected.get("value") if isinstance(selected, dict) else action.get("value")
    container = _object(body.get("container"))
    origin = Origin(
        user=_id_of(body.get("user")) or "",
        channel=_id_of(body.get("channel")) or _text(container.get("channel_id")),
        response_url=str(body.get("response_url") or ""),
        trigger_id=str(body.get("trigger_id") or ""),
        via="button",
        workspace=interaction_workspace(body),
        home=home,
    )
    return origin, str(value or "")
