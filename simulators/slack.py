"""A strict stand-in for Slack: its Web API, response URLs, file uploads and Socket
Mode, and the payloads Slack sends to an app, for tests, benchmarks and `graphops
simulate`.

Everything it enforces is a rule Slack documents. Sources (docs.slack.dev method pages
are mirrored, with their scopes and error codes, in github.com/slack-ruby/slack-api-ref
under `docs.slack.dev/methods/`):

- Tokens: `Authorization: Bearer <token>`; a wrong one gets `invalid_auth`, none
  `not_authed` (docs.slack.dev/authentication/tokens).
- Scopes (`missing_scope`, with `needed` and `provided`): read from the bot scopes of
  `manifest.yml`; the scope of each method is the one its reference page lists
  (chat.* `chat:write`; files.getUploadURLExternal / files.completeUploadExternal
  `files:write`; users.info `users:read`; usergroups.* `usergroups:read`;
  conversations.info, conversations.members and users.conversations `channels:read` /
  `groups:read` / `im:read` / `mpim:read` by conversation type (the reference pages say
  `conversations:read`, the umbrella of these); conversations.history / replies the
  matching `*:history`; views.* and auth.test none). apps.connections.open takes an app-level
  token (`xapp-`), never a bot token (docs.slack.dev/apis/events-api/using-socket-mode).
- Membership: the bot posts in public channels it is in, and in other public channels
  only with `chat:write.public` (docs.slack.dev/reference/scopes/chat:write.public),
  else `not_in_channel`; private channels and DMs it is not in are `channel_not_found`
  (chat.postMessage: "Value passed for channel was invalid"). A user id as channel is
  the app's DM, refused with `messages_tab_disabled` when the manifest turns the
  Messages tab off. chat.postEphemeral follows the same rules (GUESS: whether
  chat:write.public covers it is not written; the stand-in says it does), and to
  someone outside a private channel answers `user_not_in_channel`. Reading history
  needs membership.
- Block Kit (`invalid_blocks`, with Slack's `[ERROR] ... [json-pointer:...]` messages):
  block types, at most 50 blocks in a message and 100 in a view, text objects of 1 to
  3000 characters in sections, 2000 per field and at most 10 fields, headers of 150
  plain-text characters, at most 25 elements in an actions block and 10 in a context,
  button labels of 75 and values of 2000 characters, unique block ids and unique
  action ids in a block, modal titles / submit / close of 24 characters,
  private_metadata of 3000 (docs.slack.dev/reference/block-kit/blocks,
  .../composition-objects/text-object, .../surfaces/modals).
- `msg_blocks_too_long`: "Blocks submitted with this message are too long", returned
  although every block is within its own limit. GUESS: Slack publishes no figure;
  reports (slackapi/bolt-js#2509) put it between about 12,000 and 13,300 characters,
  varying with the blocks. The stand-in refuses more than `blocks_limit` (12,000)
  characters, measured by `blocks_measure`: "text" (the text of every text object) or
  "json" (the compact JSON of the blocks); tests run both.
- Threads: "Avoid using a reply's ts value; use its parent instead" (chat.postMessage,
  thread_ts; files.completeUploadExternal says "Never"). What Slack does then is not
  documented, so the stand-in accepts such a post into the parent's thread and records
  the mistake in `violations` (tests assert there are none).
- chat.update: only the bot's own message (`message_not_found`, `cant_update_message`);
  bursts are rate limited: answers 429 with `Retry-After` (docs.slack.dev/apis/web-api/
  rate-limits: "a Retry-After HTTP header containing the number of seconds until you
  can retry"). GUESS: the figures (Tier 3 is "50+ per minute", bursts tolerated); the
  stand-in allows `update_burst` edits per channel within `burst_window` seconds.
- Triggers (views.open, views.push): valid `trigger_ttl` = 3 seconds and once only
  (api.slack.com/docs/triggers: "Triggers expire in three seconds", "may only be used
  once"): `expired_trigger_id`, `exchanged_trigger_id`, `invalid_trigger_id`.
  views.update needs a known view id (`not_found`) and, when given, its hash
  (`hash_conflict`).
- response_url (api.slack.com/interactivity/handling#message_responses and
  /interactivity/slash-commands: "up to 5 times within 30 minutes"): minted by the
  stand-in for the payloads it sends, usable where the bot is not a member (in_channel
  or ephemeral). GUESS: the answer to an expired or used-up URL, HTTP 404 with
  `expired_url` / `used_url`; to invalid blocks, HTTP 400 with the error code.
- Files upload v2 (docs.slack.dev/messaging/working-with-files): getUploadURLExternal
  (`filename`, `length`) gives an upload URL on this server; the bytes are POSTed
  there; completeUploadExternal shares the files (`file_not_found` when a file was
  never uploaded, or its size differs from `length`), into `channel_id` (membership
  as for posts; chat:write.public does not apply, GUESS) and `thread_ts`.
- Slash commands as Slack sends them (api.slack.com/interactivity/slash-commands):
  form-encoded, text with `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`; with `should_escape:
  true` in the manifest, `@name`, `#channel` and `@group` of known users, channels and
  groups become `<@U…|name>`, `<#C…|name>`, `<!subteam^S…|@group>`. Interactivity
  payloads are `payload=<JSON>` form bodies, events JSON (api.slack.com/interactivity/
  handling). Each carries a fresh trigger id and, where Slack gives one, a response_url.
- Events typed by people (docs.slack.dev/reference/events/app_mention, .../message.im):
  `mention_event` and `dm_event` store the person's message and build the Events API
  envelope (`event_callback`, the installation in `team_id` and `authorizations`),
  and only when Slack would send it: the manifest subscribes to the event
  (`bot_events`) and holds its scope (`app_mentions:read`, `im:history`), the bot is in
  the conversation (a mention), the Messages tab is on and not read-only (a DM); else
  `NotDelivered`. Text is entity-escaped with mentions as `<@U…>`.
- Slack Connect and Enterprise organizations: `user_teams` puts people in other
  workspaces, `team_enterprises` workspaces in organizations. Payloads name the
  person's workspace where Slack does: a slash command's `team_id`/`enterprise_id`
  (GUESS: the invoking user's, in a shared channel), an interaction's `user.team_id`
  (the `E…` id for a user of an organization), an event's `user_team` with
  `is_ext_shared_channel`; a modal submitted from another workspace carries
  `view.app_installed_team_id`. `auth.test` answers the installation (`team_id`,
  `enterprise_id`).
- Select menus: a static_select holds 1 to 100 options, an external_select none;
  options have plain_text of 75 and values of 150 characters, unique
  (docs.slack.dev/reference/block-kit/block-elements/select-menu-element); an answer
  to `suggestion_payload` (block_suggestion) is checked with `options_problems`.
  `pick_payload` is what a pick sends (the value as given, so tests can forge one).
- conversations.history / conversations.replies (docs.slack.dev/reference/methods/
  conversations.history, …/conversations.replies): top-level messages newest first /
  a thread oldest first, those after `oldest` (a message at exactly `oldest` only with
  `inclusive`), metadata only with `include_all_metadata`; cursor-paginated with `limit`
  (default 100 / 1000, "under 1000"; at most `history_page` per page), `has_more` and
  `response_metadata.next_cursor`. GUESS: a limit past 1000 or not a number is
  `invalid_limit`, as for conversations.members.
- conversations.members (docs.slack.dev/reference/methods/conversations.members): the
  member ids of a conversation, `{"members": [...], "response_metadata": {"next_cursor":
  ""}}`, cursor-paginated with `limit` (default 100; "Fewer than the requested number of
  items may be returned": at most `members_page` per page); readable like
  conversations.info (a private channel the bot is not in is `channel_not_found`);
  `invalid_cursor`, `invalid_limit`. GUESS: which limits are invalid is not written;
  the stand-in refuses anything but an integer from 1 to 999 ("Must be an integer with a
  max value of 999" on the sibling users.conversations). A conversation declared without
  members (everyone) lists the workspace's known `users`.
- Socket Mode (api.slack.com/apis/connections/socket-implement): apps.connections.open
  answers a `wss` URL (here `ws://`, loopback) valid once; the WebSocket first sends
  `hello`, then envelopes (`slash_commands`, `interactive`, `events_api`) that the app
  acknowledges with `{"envelope_id", "payload"?}`; `disconnect` (reason
  `refresh_requested`, `warning`, `link_disabled`) asks the app to reconnect.

Faults: `fail_next(method, status=429, times=k, retry_after=N, stored=False)` answers
the next k calls of a method (or "*") with that status (`Retry-After` on 429) and
`ratelimited` / `fatal_error`; with `stored=True` the call takes effect first (a 5xx
after Slack stored the message). `latency` delays every call, `delays` one method.

Inspection: `calls` (every Web API call, response_url post and upload, tokens never
kept), `connections` (the client address of each TCP connection that called the Web
API), `messages` (what the channels hold), `violations`, `wait_for(...)`, and
`GET /_standin/calls`. Construct it with `strict=False` only where a test needs the
lenient path: then scopes and membership are not checked (everything else is).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import WSMsgType, web

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "manifest.yml"
JSON_FIELDS = ("blocks", "view", "attachments", "files", "metadata")

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
ACTION_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
VIEW_TITLE = 24
SELECT_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
PRIVATE_METADATA = 3000
MESSAGE_TEXT = 40000
VIEW_BYTES = 250_000
BLOCK_TYPES = frozenset(
    {
        "section",
        "context",
        "header",
        "actions",
        "divider",
        "input",
        "image",
        "rich_text",
        "markdown",
        "file",
        "video",
    }
)
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "users.info": ("users:read",),
    "usergroups.users.list": ("usergroups:read",),
    "usergroups.list": ("usergroups:read",),
}
# The bot scope each event subscription needs (docs.slack.dev/reference/events/<event>:
# "Required scopes"); events without one need none.
EVENT_SCOPES: dict[str, str] = {"app_mention": "app_mentions:read", "message.im": "im:history"}
READ_SCOPE = {"public": "channels:read", "private": "groups:read", "im": "im:read"}
HISTORY_SCOPE = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
CONVERSATION_TYPES = {"public_channel": "public", "private_channel": "private", "im": "im"}


class NotDelivered(Exception):
    """Slack would not send this event to the app (not subscribed, a scope missing, the
    bot not in the conversation, a read-only Messages tab); the message says which."""


class SlackError(Exception):
    """An `{"ok": false, "error": code, ...}` answer (HTTP 200, as Slack answers)."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass(frozen=True)
class Manifest:
    """What the stand-in reads from manifest.yml."""

    scopes: frozenset[str]
    should_escape: bool
    messages_tab: bool
    bot_events: frozenset[str] = frozenset()
    messages_tab_read_only: bool = False

    @classmethod
    def load(cls, path: Path | str = MANIFEST_PATH) -> Manifest:
        """Parse a Slack app manifest (YAML)."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        features = data.get("features") or {}
        commands = features.get("slash_commands") or [{}]
        home = features.get("app_home") or {}
        scopes = ((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
        events = ((data.get("settings") or {}).get("event_subscriptions") or {}).get(
            "bot_events"
        ) or []
        return cls(
            scopes=frozenset(str(s) for s in scopes),
            should_escape=bool(commands[0].get("should_escape", False)),
            messages_tab=bool(home.get("messages_tab_enabled", False)),
            bot_events=frozenset(str(e) for e in events),
            messages_tab_read_only=bool(home.get("messages_tab_read_only_enabled", False)),
        )


@dataclass
class Conversation:
    """A channel, private channel or DM, and who is in it (None: every user)."""

    id: str
    kind: str  # public | private | im
    name: str
    bot_member: bool
    members: set[str] | None = None

    def has_user(self, user: str) -> bool:
        return self.members is None or user in self.members


@dataclass
class Message:
    """A message a channel holds."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[Any]
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    by_bot: bool = True


@dataclass
class SlackCall:
    """One recorded call: a Web API method, `response_url`, or `upload`."""

    method: str
    body: dict[str, Any]
    status: int
    at: float
    authorized: bool
    error: str = ""

    @property
    def ok(self) -> bool:
        """HTTP 200 and no error code."""
        return self.status == 200 and not self.error


@dataclass
class _Fault:
    method: str
    status: int
    times: int
    retry_after: int
    stored: bool


@dataclass
class _Trigger:
    issued_at: float
    user: str
    used: bool = False


@dataclass
class _ResponseUrl:
    channel: str
    user: str
    issued_at: float
    uses: int = 0


@dataclass
class _Upload:
    filename: str
    length: int
    title: str
    received: bytes | None = None


@dataclass
class SlackStandIn:
    """The stand-in server; see the module docstring."""

    token: str | None = None  # when set, other bearer tokens get invalid_auth
    app_token: str | None = None  # when set, the only app-level token accepted
    channels: list[str] = field(default_factory=list)  # public channels the bot is in
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # id -> name, for users.info
    channel_names: dict[str, str] = field(default_factory=dict)
    group_handles: dict[str, str] = field(default_factory=dict)
    manifest: Manifest | None = None  # default: the repository's manifest.yml
    strict: bool = True
    latency: float = 0.0
    trigger_ttl: float = 3.0
    response_url_ttl: float = 1800.0
    response_url_uses: int = 5
    blocks_limit: int = 12000
    blocks_measure: str = "text"  # or "json"
    update_burst: int = 5
    members_page: int = 1000  # the most members conversations.members returns per page
    history_page: int = 1000  # the most messages conversations.history / replies return per page
    burst_window: float = 1.0
    bot_user_id: str = "U0GRAPHOPS"
    team_id: str = "T0STANDIN"
    app_id: str = "A0GRAPHOPS"
    enterprise_id: str = ""  # the installing workspace's Enterprise organization, if any
    # Users of other workspaces (a Slack Connect channel, or another workspace of the same
    # organization): user id -> their team id; `team_enterprises`: team -> organization.
    user_teams: dict[str, str] = field(default_factory=dict)
    team_enterprises: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # extra latency per method
    calls: list[SlackCall] = field(default_factory=list)
    # (host, port) of each client TCP connection that called the Web API
    connections: set[tuple[str, int]] = field(default_factory=set)
    messages: list[Message] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""
    _conversations: dict[str, Conversation] = field(default_factory=dict)
    _faults: list[_Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _last_ts: float = 0.0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _skew: float = 0.0
    _triggers: dict[str, _Trigger] = field(default_factory=dict)
    _response_urls: dict[str, _ResponseUrl] = field(default_factory=dict)
    _views: dict[str, dict[str, Any]] = field(default_factory=dict)
    _uploads: dict[str, _Upload] = field(default_factory=dict)
    _updates: dict[str, deque[float]] = field(default_factory=dict)
    _tickets: dict[str, float] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    hellos: int = 0

    def __post_init__(self) -> None:
        if self.manifest is None:
            if not MANIFEST_PATH.exists():
                raise FileNotFoundError(
                    f"the Slack stand-in reads scopes from {MANIFEST_PATH}, which is missing; "
                    "pass manifest=Manifest(...)"
                )
            self.manifest = Manifest.load(MANIFEST_PATH)
        for channel in self.channels:
            self.add_conversation(channel, bot_member=True)

    # -- the workspace -------------------------------------------------------------------

    def add_conversation(
        self,
        ident: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        bot_member: bool = False,
        members: Iterable[str] | None = None,
    ) -> Conversation:
        """Declare a conversation (kind from the id by default: C public, G private, D DM)."""
        kind = kind or {"G": "private", "D": "im"}.get(ident[:1], "public")
        conversation = Conversation(
            ident,
            kind,
            name or self.channel_names.get(ident) or ident.lower(),
            bot_member,
            set(members) if members is not None else None,
        )
        self._conversations[ident] = conversation
        return conversation

    def conversation(self, ident: str) -> Conversation | None:
        """A known conversation; unknown C/G/D ids are created on first sight (the bot
        not a member), anything else is None."""
        found = self._conversations.get(ident)
        if found is None and re.fullmatch(r"[CGD][A-Z0-9]{1,20}", ident or ""):
            found = self.add_conversation(ident)
        return found

    def now(self) -> float:
        """The stand-in's clock (monotonic, moved on by `advance`)."""
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        """Age every trigger and response_url by `seconds`."""
        self._skew += seconds

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on loopback; return the base URL (the Web API is under `/api/`)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response/{token}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/_standin/calls", self._list_calls)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        address = runner.addresses[0]
        self.url = f"http://{address[0]}:{address[1]}"
        return self.url

    async def stop(self) -> None:
        """Close Socket Mode connections and stop the server (idempotent)."""
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """The `base_url` for slack_sdk clients."""
        return self.url + "/api/"

    # -- faults and inspection ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 429,
        times: int = 1,
        retry_after: int = 1,
        *,
        stored: bool = False,
    ) -> None:
        """Answer the next `times` calls of `method` ("*" for any) with `status`; with
        `stored`, after the call took effect."""
        self._faults.append(_Fault(method, status, times, retry_after, stored))

    def calls_to(self, method: str) -> list[SlackCall]:
        """Recorded calls of one method (ok or not)."""
        return [c for c in self.calls if c.method == method]

    def ok_calls(self, method: str) -> list[SlackCall]:
        """Recorded calls of one method that succeeded."""
        return [c for c in self.calls if c.method == method and c.ok]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Wait until at least `count` successful calls of `method` (matching `where`)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.ok_calls(method) if where is None or where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [(c.method, c.error or c.status) for c in self.calls]
                raise TimeoutError(f"{count} x {method} not seen in {timeout}s; calls: {seen}")
            await asyncio.sleep(0.01)

    def message(self, channel: str, ts: str) -> Message | None:
        """The stored message `ts` of `channel`."""
        for message in self.messages:
            if message.channel == channel and message.ts == ts:
                return message
        return None

    def thread(self, channel: str, root_ts: str) -> list[Message]:
        """The replies in the thread of `root_ts`."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == root_ts]

    # -- what Slack sends to the app ------------------------------------------------------------

    def new_trigger(self, user: str) -> str:
        """A trigger id as Slack puts in payloads (valid `trigger_ttl` seconds, once)."""
        trigger = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger] = _Trigger(self.now(), user)
        return trigger

    def new_response_url(self, channel: str, user: str) -> str:
        """A response_url for an interaction of `user` in `channel`."""
        token = secrets.token_urlsafe(12)
        self._response_urls[token] = _ResponseUrl(channel, user, self.now())
        return f"{self.url}/response/{token}"

    def encode_text(self, typed: str) -> str:
        """Command text as Slack sends it: `&`, `<`, `>` as entities; with should_escape,
        known @users, #channels and @groups as `<@U…|name>`, `<#C…|name>`,
        `<!subteam^S…|@handle>`."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert self.manifest is not None
        if not self.manifest.should_escape:
            return text
        users = {name: ident for ident, name in self.users.items()}
        groups = {handle: ident for ident, handle in self.group_handles.items()}
        channels = {c.name: c.id for c in self._conversations.values() if c.kind != "im"}
        channels.update({name: ident for ident, name in self.channel_names.items()})

        def mention(match: re.Match[str]) -> str:
            sigil, name = match.group(1), match.group(2)
            if sigil == "#" and name in channels:
                return f"<#{channels[name]}|{name}>"
            if sigil == "@" and name in users:
                return f"<@{users[name]}|{name}>"
            if sigil == "@" and name in groups:
                return f"<!subteam^{groups[name]}|@{name}>"
            return match.group(0)

        return re.sub(r"(?<![\w&])([@#])([\w.-]+)", mention, text)

    def team_of(self, user: str) -> str:
        """The workspace a user belongs to (the installing one unless `user_teams` says)."""
        return self.user_teams.get(user, self.team_id)

    def enterprise_of(self, team: str) -> str:
        """The organization of a workspace ("" when none)."""
        if team == self.team_id:
            return self.enterprise_id
        return self.team_enterprises.get(team, "")

    def _user_object(self, user: str) -> dict[str, Any]:
        """`user` of an interaction payload: `team_id` is the user's workspace, or their
        organization's id (`E…`) for a user of an Enterprise organization
        (docs.slack.dev/reference/interaction-payloads/block_suggestion-payload)."""
        team = self.team_of(user)
        return {
            "id": user,
            "username": self.users.get(user, user.lower()),
            "name": self.users.get(user, user.lower()),
            "team_id": self.enterprise_of(team) or team,
        }

    def _team_object(self, user: str) -> dict[str, Any]:
        """`team` of an interaction payload. GUESS: the workspace the person acted from,
        which is theirs; `enterprise_id` when it belongs to an organization."""
        team = self.team_of(user)
        found: dict[str, Any] = {"id": team, "domain": team.lower()}
        if self.enterprise_of(team):
            found["enterprise_id"] = self.enterprise_of(team)
        return found

    def slash_payload(
        self, typed: str, *, user: str, channel: str, command: str = "/gdb"
    ) -> dict[str, Any]:
        """The fields of a slash command invocation (form-encode with `form_body`).

        `team_id` / `enterprise_id`: the invoking user's workspace and organization
        (GUESS for Slack Connect, see bot/slack/edge.py)."""
        team = self.team_of(user)
        payload = {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "standin",
            "channel_id": channel,
            "channel_name": (
                self.conversation(channel) or Conversation(channel, "", "", False)
            ).name,
            "user_id": user,
            "user_name": self.users.get(user, user.lower()),
            "command": command,
            "text": self.encode_text(typed),
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(channel, user),
            "trigger_id": self.new_trigger(user),
        }
        if self.enterprise_of(team):
            payload["enterprise_id"] = self.enterprise_of(team)
            payload["enterprise_name"] = "Stand-in Org"
        return payload

    def action_payload(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str | None,
        message_ts: str = "",
        label: str = "",
    ) -> dict[str, Any]:
        """A block_actions payload: a button clicked in a message (or, without a channel,
        on the App Home tab, which has no response_url)."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": self._team_object(user),
            "user": self._user_object(user),
            "is_enterprise_install": False,
            "api_app_id": self.app_id,
            "token": "legacy-verification-token",
            "trigger_id": self.new_trigger(user),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "text": {"type": "plain_text", "text": label or action_id},
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if channel:
            payload["channel"] = {"id": channel}
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["message"] = {"ts": message_ts, "type": "message"}
            payload["response_url"] = self.new_response_url(channel, user)
        else:
            payload["container"] = {"type": "view", "view_id": "V0HOME"}
            payload["view"] = {"id": "V0HOME", "type": "home"}
        return payload

    def submission_payload(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str
    ) -> dict[str, Any]:
        """A view_submission of `view` (as opened) with `values` as its state."""
        submitted: dict[str, Any] = {
            "id": view.get("id", "V0MODAL"),
            "type": "modal",
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "state": {"values": values},
            "hash": view.get("hash", ""),
            "team_id": self.team_id,
        }
        if self.team_of(user) != self.team_id:
            # "a modal view that was opened in a different workspace via some operations
            # inside a Slack Connect channel" (bolt-python, extract_team_id)
            submitted["app_installed_team_id"] = self.team_id
        return {
            "type": "view_submission",
            "team": self._team_object(user),
            "user": self._user_object(user),
            "api_app_id": self.app_id,
            "is_enterprise_install": False,
            "token": "legacy-verification-token",
            "trigger_id": self.new_trigger(user),
            "view": submitted,
            "response_urls": [],
        }

    def event_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API event_callback wrapping `event` (docs.slack.dev/apis/events-api:
        the envelope's `team_id` and `authorizations` are the installation's; in a shared
        channel `is_ext_shared_channel` is true and the event names the author's
        workspace in `user_team`)."""
        payload: dict[str, Any] = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "type": "event_callback",
            "event": event,
            "event_id": f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id or None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": bool(event.get("user_team"))
            and event.get("user_team") != self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": self.enterprise_id or None,
        }
        if self.enterprise_id:
            payload["enterprise_id"] = self.enterprise_id
        return payload

    # -- messages people type: mentions and direct messages ------------------------------------

    def message_text(self, typed: str) -> str:
        """Message text as the Events API sends it: `&`, `<`, `>` as entities, and known
        @users, #channels and @groups as `<@U…>`, `<#C…|name>`, `<!subteam^S…>`
        (docs.slack.dev/messaging/formatting-message-text: mentions in received text)."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        users = {name: ident for ident, name in self.users.items()}
        groups = {handle: ident for ident, handle in self.group_handles.items()}
        channels = {c.name: c.id for c in self._conversations.values() if c.kind != "im"}
        channels.update({name: ident for ident, name in self.channel_names.items()})

        def mention(match: re.Match[str]) -> str:
            sigil, name = match.group(1), match.group(2)
            if sigil == "#" and name in channels:
                return f"<#{channels[name]}|{name}>"
            if sigil == "@" and name in users:
                return f"<@{users[name]}>"
            if sigil == "@" and name in groups:
                return f"<!subteam^{groups[name]}>"
            return match.group(0)

        return re.sub(r"(?<![\w&])([@#])([\w.-]+)", mention, text)

    def _deliverable(self, subscription: str) -> None:
        """NotDelivered unless the manifest subscribes to `subscription` with its scope."""
        assert self.manifest is not None
        if subscription not in self.manifest.bot_events:
            raise NotDelivered(f"manifest.yml does not subscribe to the {subscription} event")
        scope = EVENT_SCOPES.get(subscription)
        if scope and scope not in self.manifest.scopes:
            raise NotDelivered(f"the {subscription} event needs the {scope} scope")

    def _user_message(self, channel: str, user: str, text: str, thread_ts: str | None) -> str:
        """Store a message a person typed; its ts."""
        ts = self._next_ts()
        self.messages.append(Message(channel, ts, thread_ts, text, [], by_bot=False))
        return ts

    def _event_team(self, event: dict[str, Any], user: str) -> dict[str, Any]:
        team = self.team_of(user)
        event["team"] = team
        if team != self.team_id:  # someone of another workspace, in a shared channel
            event["user_team"] = self.enterprise_of(team) or team
            event["source_team"] = team
        return event

    def mention_event(
        self, typed: str, *, user: str, channel: str, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """`@graphops <typed>` posted by `user` in `channel`: the app_mention envelope Slack
        sends (the message is stored, so answers can thread under it). NotDelivered when
        Slack would not send it: not subscribed, no `app_mentions:read`, or the bot not in
        the conversation ("If your app is mentioned but not part of a conversation ...,
        you won't receive an event", docs.slack.dev/reference/events/app_mention)."""
        self._deliverable("app_mention")
        conversation = self.conversation(channel)
        if conversation is None or not conversation.bot_member:
            raise NotDelivered(f"the bot is not a member of {channel}")
        if not conversation.has_user(user):
            raise NotDelivered(f"{user} is not in {channel}")
        text = f"<@{self.bot_user_id}> {self.message_text(typed)}"
        ts = self._user_message(channel, user, text, thread_ts)
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event_payload(self._event_team(event, user))

    def dm_channel(self, user: str) -> str:
        """The id of `user`'s direct message with the bot (made on first use)."""
        for conversation in self._conversations.values():
            if conversation.kind == "im" and conversation.members == {user}:
                return conversation.id
        ident = "D" + user[1:] if len(user) > 1 else "D0" + user
        self.add_conversation(ident, kind="im", bot_member=True, members=[user])
        return ident

    def dm_event(self, typed: str, *, user: str) -> dict[str, Any]:
        """`typed` sent by `user` in their DM with the bot: the `message` event of the
        message.im subscription (channel_type `im`). NotDelivered when not subscribed,
        without `im:history`, or when the Messages tab is off or read-only (people cannot
        write there then)."""
        self._deliverable("message.im")
        assert self.manifest is not None
        if not self.manifest.messages_tab or self.manifest.messages_tab_read_only:
            raise NotDelivered("the app's Messages tab is off or read-only")
        channel = self.dm_channel(user)
        text = self.message_text(typed)
        ts = self._user_message(channel, user, text, None)
        event = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
        }
        return self.event_payload(self._event_team(event, user))

    # -- menus ---------------------------------------------------------------------------------

    def pick_payload(
        self,
        block: dict[str, Any],
        value: str,
        *,
        user: str,
        channel: str,
        label: str = "",
    ) -> dict[str, Any]:
        """The block_actions Slack sends when `user` picks the option `value` of the select
        menu in `block` (an actions block the app sent in an ephemeral message in
        `channel`). `value` is sent as given: a test may forge one the menu did not list."""
        [element] = block["elements"]
        payload = self.action_payload(str(element.get("action_id")), "", user=user, channel=channel)
        payload["container"]["is_ephemeral"] = True
        payload["actions"] = [
            {
                "type": element.get("type"),
                "action_id": element.get("action_id"),
                "block_id": block.get("block_id", ""),
                "selected_option": {
                    "text": {"type": "plain_text", "text": label or value},
                    "value": value,
                },
                "action_ts": f"{time.time():.6f}",
            }
        ]
        return payload

    def suggestion_payload(
        self, block: dict[str, Any], typed: str, *, user: str, channel: str
    ) -> dict[str, Any]:
        """The block_suggestion Slack sends while `user` types `typed` in the
        external_select of `block` (docs.slack.dev/reference/interaction-payloads/
        block_suggestion-payload)."""
        [element] = block["elements"]
        return {
            "type": "block_suggestion",
            "user": self._user_object(user),
            "team": self._team_object(user),
            "container": {"type": "message", "channel_id": channel, "is_ephemeral": True},
            "api_app_id": self.app_id,
            "token": "legacy-verification-token",
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id", ""),
            "value": typed,
            "channel": {"id": channel},
        }

    @staticmethod
    def form_body(payload: dict[str, Any]) -> tuple[str, str]:
        """(body, content type) as Slack posts `payload` to a request URL."""
        if "command" in payload and "type" not in payload:
            return urlencode(payload), "application/x-www-form-urlencoded"
        if payload.get("type") == "event_callback":
            return json.dumps(payload), "application/json"
        return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"

    # -- Socket Mode --------------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        """Whether an app holds an open Socket Mode connection."""
        return any(not s.closed for s in self._sockets)

    async def wait_socket(self, hellos: int = 1, timeout: float = 10.0) -> None:
        """Wait until `hellos` connections were greeted and one is open."""
        deadline = time.monotonic() + timeout
        while self.hellos < hellos or not self.socket_connected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Socket Mode connection #{hellos} in {timeout}s")
            await asyncio.sleep(0.01)

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], timeout: float = 3.0
    ) -> dict[str, Any]:
        """Send an envelope (`slash_commands`, `interactive`, `events_api`) over the open
        connection; return the app's acknowledgement (TimeoutError after `timeout`, as
        Slack gives up after 3 seconds)."""
        sockets = [s for s in self._sockets if not s.closed]
        if not sockets:
            raise ConnectionError("no Socket Mode connection is open")
        envelope_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._acks.pop(envelope_id, None)

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Tell every connected app to reconnect, then close the connections."""
        for socket in [s for s in self._sockets if not s.closed]:
            with contextlib.suppress(Exception):
                await socket.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}}
                )
            if reason != "warning":
                with contextlib.suppress(Exception):
                    await socket.close()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        issued = self._tickets.pop(ticket, None)
        if issued is None or self.now() - issued > 30:
            return web.Response(status=401, text="invalid or used ticket")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        self.hellos += 1
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": len([s for s in self._sockets if not s.closed]),
                "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(message.data)
                    future = self._acks.get(str(data.get("envelope_id")))
                    if future is not None and not future.done():
                        future.set_result(data.get("payload") or {})
        finally:
            self._sockets.remove(socket)
        return socket

    # -- handling the Web API ---------------------------------------------------------------------

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in (method, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        """Query parameters (slack_sdk sends some methods' arguments there) and the form
        or JSON body; JSON-encoded form fields parsed back."""
        body: dict[str, Any] = dict(request.query)
        if request.method == "GET":
            return body
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                data = None
            body.update(data if isinstance(data, dict) else {})
            return body
        body.update({k: str(v) for k, v in (await request.post()).items()})
        for name in JSON_FIELDS:
            if isinstance(body.get(name), str):
                with contextlib.suppress(ValueError):
                    body[name] = json.loads(body[name])
        return body

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        error = "ratelimited" if fault.status == 429 else "fatal_error"
        return web.json_response(
            {"ok": False, "error": error}, status=fault.status, headers=headers
        )

    def _record(
        self, method: str, body: dict[str, Any], status: int, authorized: bool, error: str = ""
    ) -> None:
        self.calls.append(SlackCall(method, body, status, time.time(), authorized, error))

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.connections.add((str(peer[0]), int(peer[1])))
        body = await self._body(request)
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        given = given or str(body.pop("token", "") or "")
        body.pop("token", None)  # never keep a token in the log
        if self.latency or self.delays.get(method):
            await asyncio.sleep(self.latency + self.delays.get(method, 0.0))
        fault = self._take_fault(method)
        if fault is not None and not fault.stored:
            self._record(method, body, fault.status, bool(given), "injected")
            return self._fault_response(fault)
        limited = self._rate_limited(method, body)
        if limited is not None:
            self._record(method, body, 429, bool(given), "ratelimited")
            return limited
        try:
            authorized = self._authorize(method, given)
            answer = {"ok": True, **self._answer(method, body)}
            error = ""
        except SlackError as exc:
            authorized = exc.code not in ("invalid_auth", "not_authed", "not_allowed_token_type")
            answer = {"ok": False, "error": exc.code, **exc.extra}
            error = exc.code
        if fault is not None:
            self._record(method, body, fault.status, authorized, "injected after effect")
            return self._fault_response(fault)
        self._record(method, body, 200, authorized, error)
        return web.json_response(answer)

    def _authorize(self, method: str, given: str) -> bool:
        if not given:
            raise SlackError("not_authed")
        if method == "apps.connections.open":
            if not given.startswith("xapp-"):
                raise SlackError("not_allowed_token_type")
            if self.app_token is not None and given != self.app_token:
                raise SlackError("invalid_auth")
            return True
        if given.startswith("xapp-"):
            raise SlackError("not_allowed_token_type")
        if self.token is not None and given != self.token:
            raise SlackError("invalid_auth")
        return True

    def _need(self, *scopes: str) -> None:
        """Raise missing_scope unless the manifest grants one of `scopes`."""
        assert self.manifest is not None
        if not self.strict or not scopes or any(s in self.manifest.scopes for s in scopes):
            return
        raise SlackError(
            "missing_scope",
            needed=",".join(scopes),
            provided=",".join(sorted(self.manifest.scopes)),
        )

    def _rate_limited(self, method: str, body: dict[str, Any]) -> web.Response | None:
        if method != "chat.update":
            return None
        window = self._updates.setdefault(str(body.get("channel")), deque())
        now = self.now()
        while window and now - window[0] > self.burst_window:
            window.popleft()
        if len(window) >= self.update_burst:
            retry = max(1, round(self.burst_window - (now - window[0]) + 0.5))
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry)},
            )
        window.append(now)
        return None

    def _next_ts(self) -> str:
        """A message ts as Slack makes them: epoch seconds with microseconds, unique."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        self._need(*METHOD_SCOPES.get(method, ()))
        handler = _METHODS.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        return handler(self, body)

    # -- conversations and messages ---------------------------------------------------------------

    def _postable(self, channel: str, *, files: bool = False) -> Conversation | None:
        """Check that the bot may post in `channel`; None for the app's DM with a user."""
        assert self.manifest is not None
        if re.fullmatch(r"[UW][A-Z0-9]{1,20}", channel or ""):
            if self.strict and not self.manifest.messages_tab:
                raise SlackError("messages_tab_disabled")
            return None
        conversation = self.conversation(channel)
        if conversation is None:
            raise SlackError("channel_not_found")
        if not self.strict or conversation.bot_member:
            return conversation
        if conversation.kind != "public":
            raise SlackError("channel_not_found")
        if files or "chat:write.public" not in self.manifest.scopes:
            raise SlackError("not_in_channel")
        return conversation

    def _check_thread(self, channel: str, thread_ts: str | None) -> str | None:
        """The thread a reply lands in; a reply's ts or an unknown ts is a violation."""
        if not thread_ts:
            return None
        parent = self.message(channel, str(thread_ts))
        if parent is None:
            self.violations.append(f"thread_ts {thread_ts} in {channel} is no message")
            return str(thread_ts)
        if parent.thread_ts:
            self.violations.append(
                f"thread_ts {thread_ts} in {channel} is a reply; its parent is {parent.thread_ts}"
            )
            return parent.thread_ts
        return parent.ts

    def _check_message(self, body: dict[str, Any], text_limit: int = MESSAGE_TEXT) -> None:
        blocks = body.get("blocks")
        text = str(body.get("text") or "")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > text_limit:
            raise SlackError("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks, surface="message")
            if problems:
                raise invalid_blocks(problems)
            if blocks_size(blocks, self.blocks_measure) > self.blocks_limit:
                raise SlackError("msg_blocks_too_long")

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel") or "")
        conversation = self._postable(channel)
        self._check_message(body)
        if conversation is None:  # the app's DM with a user
            channel = "D" + channel
            self.add_conversation(channel, kind="im", bot_member=True, members=[channel[1:]])
        thread = self._check_thread(channel, body.get("thread_ts"))
        ts = self._next_ts()
        metadata = body.get("metadata")
        self.messages.append(
            Message(
                channel,
                ts,
                thread,
                str(body.get("text") or ""),
                list(body.get("blocks") or []),
                metadata if isinstance(metadata, dict) else None,
            )
        )
        return {"channel": channel, "ts": ts, "message": {"ts": ts, "text": body.get("text")}}

    def _post_ephemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, user = str(body.get("channel") or ""), str(body.get("user") or "")
        if not user:
            raise SlackError("user_not_found")
        conversation = self._postable(channel)
        if conversation is not None and self.strict and not conversation.has_user(user):
            raise SlackError("user_not_in_channel")
        self._check_message(body)
        return {"message_ts": self._next_ts()}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        if self.conversation(channel) is None:
            raise SlackError("channel_not_found")
        message = self.message(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        if not message.by_bot:
            raise SlackError("cant_update_message")
        self._check_message(body)
        message.text = str(body.get("text") or "")
        message.blocks = list(body.get("blocks") or [])
        return {"channel": channel, "ts": ts, "text": message.text}

    def _delete(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        message = self.message(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        self.messages.remove(message)
        return {"channel": channel, "ts": ts}

    def _readable(self, channel: str, scopes: dict[str, str]) -> Conversation:
        conversation = self.conversation(channel)
        if conversation is None:
            raise SlackError("channel_not_found")
        self._need(scopes[conversation.kind])
        if self.strict and not conversation.bot_member:
            if conversation.kind != "public":
                raise SlackError("channel_not_found")
            if scopes is HISTORY_SCOPE:
                raise SlackError("not_in_channel")
        return conversation

    def _history(self, body: dict[str, Any], replies: bool = False) -> dict[str, Any]:
        channel = str(body.get("channel") or "")
        self._readable(channel, HISTORY_SCOPE)
        oldest = float(body.get("oldest") or 0)
        inclusive = str(body.get("inclusive", "")).lower() in ("1", "true")
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        start, limit = _window(body, "history", 1000 if replies else 100, 1000)
        if replies:
            root = str(body.get("ts") or "")
            if self.message(channel, root) is None:
                raise SlackError("thread_not_found")
            found = [
                m for m in self.messages if m.channel == channel and root in (m.ts, m.thread_ts)
            ]
        else:
            found = [m for m in self.messages if m.channel == channel and not m.thread_ts]
        out = []
        for message in found:
            if float(message.ts) < oldest or (float(message.ts) == oldest and not inclusive):
                continue
            item: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text}
            if message.thread_ts:
                item["thread_ts"] = message.thread_ts
            if message.by_bot:
                item["bot_id"] = "B0GRAPHOPS"
            if with_metadata and message.metadata:
                item["metadata"] = message.metadata
            out.append(item)
        if not replies:
            out.reverse()  # newest first
        end = start + min(limit, self.history_page)
        more = end < len(out)
        return {
            "messages": out[start:end],
            "has_more": more,
            "response_metadata": {"next_cursor": _b64(f"history:{end}") if more else ""},
        }

    def _conversation_info(self, body: dict[str, Any]) -> dict[str, Any]:
        conversation = self._readable(str(body.get("channel") or ""), READ_SCOPE)
        return {
            "channel": {
                "id": conversation.id,
                "name": conversation.name,
                "is_channel": conversation.kind == "public",
                "is_private": conversation.kind != "public",
                "is_im": conversation.kind == "im",
                "is_member": conversation.bot_member,
            }
        }

    def _conversation_members(self, body: dict[str, Any]) -> dict[str, Any]:
        conversation = self._readable(str(body.get("channel") or ""), READ_SCOPE)
        start, limit = _window(body, "members", 100, 999)
        everyone = conversation.members if conversation.members is not None else self.users
        members = sorted(everyone)
        end = start + min(limit, self.members_page)
        next_cursor = _b64(f"members:{end}") if end < len(members) else ""
        return {"members": members[start:end], "response_metadata": {"next_cursor": next_cursor}}

    def _users_conversations(self, body: dict[str, Any]) -> dict[str, Any]:
        kinds = [
            CONVERSATION_TYPES.get(t.strip(), "?")
            for t in str(body.get("types") or "public_channel").split(",")
        ]
        if "?" in kinds:
            raise SlackError("invalid_types")
        for kind in kinds:
            self._need(READ_SCOPE[kind])
        user = str(body.get("user") or self.bot_user_id)
        found = [
            {"id": c.id, "name": c.name, "is_member": c.bot_member}
            for c in self._conversations.values()
            if c.kind in kinds
            and (c.id in self.channels or c.members is not None)  # declared, not guessed
            and (c.bot_member or c.kind == "public")  # what the bot may see
            and c.has_user(user)
        ]
        return {"channels": found, "response_metadata": {"next_cursor": ""}}

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("user") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        name = self.users[user]
        return {
            "user": {
                "id": user,
                "name": name,
                "real_name": name.title(),
                "profile": {"display_name": name, "real_name": name.title()},
            }
        }

    def _group_members(self, body: dict[str, Any]) -> dict[str, Any]:
        group = str(body.get("usergroup") or "")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _groups(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "usergroups": [
                {"id": g, "handle": self.group_handles.get(g, g.lower()), "users": u}
                for g, u in self.usergroups.items()
            ]
        }

    # -- views --------------------------------------------------------------------------------

    def _exchange_trigger(self, body: dict[str, Any]) -> None:
        trigger = self._triggers.get(str(body.get("trigger_id") or ""))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.now() - trigger.issued_at > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True

    def _checked_view(self, body: dict[str, Any], surface: str) -> dict[str, Any]:
        view = body.get("view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["view"]})
        problems = view_problems(view, surface)
        if problems:
            raise invalid_blocks(problems, code="invalid_arguments")
        if len(json.dumps(view)) > VIEW_BYTES:
            raise SlackError("view_too_large")
        return view

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        stored = {
            **view,
            "id": view_id or f"V{next(self._ids):08d}",
            "hash": secrets.token_hex(6),
            "team_id": self.team_id,
        }
        self._views[stored["id"]] = stored
        return {"view": stored}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(body, "modal")
        self._exchange_trigger(body)
        return self._store_view(view)

    def _views_update(self, body: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(body, "modal")
        view_id = str(body.get("view_id") or "")
        known = self._views.get(view_id)
        if known is None:
            raise SlackError("not_found")
        if body.get("hash") and body["hash"] != known["hash"]:
            raise SlackError("hash_conflict")
        return self._store_view(view, view_id)

    def _views_publish(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("user_id"):
            raise SlackError("invalid_arguments")
        return self._store_view(self._checked_view(body, "home"))

    # -- files --------------------------------------------------------------------------------

    def _upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        filename = str(body.get("filename") or "")
        try:
            length = int(body.get("length") or -1)
        except ValueError:
            length = -1
        if not filename or length < 0:
            raise SlackError("missing_argument")
        file_id = f"F{next(self._ids):08d}"
        self._uploads[file_id] = _Upload(filename, length, filename)
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        files = body.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        uploads = []
        for item in files:
            upload = self._uploads.get(str((item or {}).get("id")))
            if upload is None or upload.received is None or len(upload.received) != upload.length:
                raise SlackError("file_not_found")
            upload.title = str(item.get("title") or upload.filename)
            uploads.append((str(item["id"]), upload))
        channel = str(body.get("channel_id") or body.get("channels") or "")
        if channel:
            if "," in channel and body.get("thread_ts"):
                raise SlackError("invalid_arguments")
            self._postable(channel, files=True)
            thread = self._check_thread(channel, body.get("thread_ts"))
            ts = self._next_ts()
            self.messages.append(
                Message(
                    channel,
                    ts,
                    thread,
                    str(body.get("initial_comment") or ""),
                    [],
                    files=[file_id for file_id, _ in uploads],
                )
            )
        return {
            "files": [
                {
                    "id": file_id,
                    "name": u.filename,
                    "title": u.title,
                    "size": len(u.received or b""),
                }
                for file_id, u in uploads
            ]
        }

    def file_content(self, file_id: str) -> str:
        """What was uploaded as `file_id` (UTF-8)."""
        upload = self._uploads[file_id]
        return (upload.received or b"").decode("utf-8")

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self._uploads.get(request.match_info["file_id"])
        data = await request.read()
        if upload is None:
            self._record("upload", {"bytes": len(data)}, 404, True, "file_not_found")
            return web.Response(status=404, text="file_not_found")
        upload.received = data
        self._record("upload", {"filename": upload.filename, "bytes": len(data)}, 200, True)
        return web.Response(text=f"OK - {len(data)}")

    # -- response_url -------------------------------------------------------------------------

    async def _response_url(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._record("response_url", {}, 400, True, "invalid_payload")
            return web.Response(status=400, text="invalid_payload")
        found = self._response_urls.get(token)
        record = dict(body)
        if found is not None:
            record.update({"_channel": found.channel, "_user": found.user})

        def refuse(status: int, code: str) -> web.Response:
            self._record("response_url", record, status, True, code)
            return web.json_response({"ok": False, "error": code}, status=status)

        if found is None:
            return refuse(404, "invalid_url")
        if self.now() - found.issued_at > self.response_url_ttl:
            return refuse(404, "expired_url")
        if found.uses >= self.response_url_uses:
            return refuse(404, "used_url")
        try:
            self._check_message(body)
        except SlackError as exc:
            return refuse(400, exc.code)
        found.uses += 1
        if body.get("response_type") == "in_channel":
            thread = self._check_thread(found.channel, body.get("thread_ts"))
            self.messages.append(
                Message(
                    found.channel,
                    self._next_ts(),
                    thread,
                    str(body.get("text") or ""),
                    list(body.get("blocks") or []),
                )
            )
        self._record("response_url", record, 200, True)
        return web.json_response({"ok": True})

    async def _list_calls(self, request: web.Request) -> web.Response:
        """What the bot sent so far (for people and out-of-process tests)."""
        return web.json_response(
            [
                {"method": c.method, "body": c.body, "status": c.status, "error": c.error}
                for c in self.calls
            ]
        )

    def _apps_connections_open(self, body: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_urlsafe(12)
        self._tickets[ticket] = self.now()
        return {"url": self.url.replace("http://", "ws://") + f"/socket?ticket={ticket}"}

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "graphops",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0GRAPHOPS",
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
        }


def _b64(text: str) -> str:
    """An opaque cursor, as Slack's look (base64)."""
    return base64.urlsafe_b64encode(text.encode()).decode()


def _window(body: dict[str, Any], kind: str, default: int, most: int) -> tuple[int, int]:
    """(where a cursor-paginated page starts, the `limit` asked) of a request; SlackError
    `invalid_limit` for a limit that is not a number from 1 to `most`, `invalid_cursor`
    for a cursor this stand-in did not give for `kind`."""
    try:
        limit = int(str(body.get("limit") or default))
    except ValueError:
        raise SlackError("invalid_limit") from None
    if not 1 <= limit <= most:
        raise SlackError("invalid_limit")
    cursor = str(body.get("cursor") or "")
    if not cursor:
        return 0, limit
    match = re.fullmatch(rf"{kind}:(\d+)", _unb64(cursor))
    if match is None:
        raise SlackError("invalid_cursor")
    return int(match.group(1)), limit


def _unb64(cursor: str) -> str:
    """The text of a cursor made by `_b64` ("" when it is not one)."""
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


_METHODS: dict[str, Callable[[SlackStandIn, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackStandIn._auth_test,
    "apps.connections.open": SlackStandIn._apps_connections_open,
    "chat.postMessage": SlackStandIn._post_message,
    "chat.postEphemeral": SlackStandIn._post_ephemeral,
    "chat.update": SlackStandIn._update,
    "chat.delete": SlackStandIn._delete,
    "conversations.history": SlackStandIn._history,
    "conversations.replies": lambda s, b: s._history(b, replies=True),
    "conversations.info": SlackStandIn._conversation_info,
    "conversations.members": SlackStandIn._conversation_members,
    "users.conversations": SlackStandIn._users_conversations,
    "users.info": SlackStandIn._users_info,
    "usergroups.users.list": SlackStandIn._group_members,
    "usergroups.list": SlackStandIn._groups,
    "views.open": SlackStandIn._views_open,
    "views.push": SlackStandIn._views_open,
    "views.update": SlackStandIn._views_update,
    "views.publish": SlackStandIn._views_publish,
    "files.getUploadURLExternal": SlackStandIn._upload_url,
    "files.completeUploadExternal": SlackStandIn._complete_upload,
}


# -- Block Kit rules ------------------------------------------------------------------------


def invalid_blocks(problems: list[str], code: str = "invalid_blocks") -> SlackError:
    """The error Slack answers for blocks it cannot take, with its messages."""
    return SlackError(
        code,
        errors=problems,
        response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
    )


def _text_problems(obj: Any, where: str, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{where}]"]
    if plain and obj["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{where}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must be an element [json-pointer:{where}]"]
    problems = []
    if len(str(element.get("action_id", ""))) > ID_LENGTH:
        problems.append(f"must be less than 256 characters [json-pointer:{where}/action_id]")
    if element["type"] == "button":
        problems += _text_problems(element.get("text"), f"{where}/text", BUTTON_TEXT, plain=True)
        if len(str(element.get("value", ""))) > BUTTON_VALUE:
            problems.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"invalid style [json-pointer:{where}/style]")
    if element["type"] == "plain_text_input" and "placeholder" in element:
        problems += _text_problems(element["placeholder"], f"{where}/placeholder", 150, plain=True)
    if element["type"] in ("static_select", "external_select"):
        problems += _select_problems(element, where)
    return problems


def _option_problems(option: Any, where: str) -> list[str]:
    """An option object: plain_text `text` of 75 characters, `value` of 150
    (docs.slack.dev/reference/block-kit/composition-objects/option-object)."""
    if not isinstance(option, dict):
        return [f"must be an option [json-pointer:{where}]"]
    problems = _text_problems(option.get("text"), f"{where}/text", OPTION_TEXT, plain=True)
    value = option.get("value")
    if not isinstance(value, str) or not value:
        problems.append(f"must provide a value [json-pointer:{where}/value]")
    elif len(value) > OPTION_VALUE:
        problems.append(f"must be less than 151 characters [json-pointer:{where}/value]")
    return problems


def options_problems(options: Any, where: str = "/options") -> list[str]:
    """A list of options (a static_select's, or an answer to block_suggestion): 1 to
    100 of them, each valid, values unique."""
    if not isinstance(options, list) or len(options) > SELECT_OPTIONS:
        return [f"must have at most {SELECT_OPTIONS} items [json-pointer:{where}]"]
    problems = []
    for i, option in enumerate(options):
        problems += _option_problems(option, f"{where}/{i}")
    values = [o.get("value") for o in options if isinstance(o, dict)]
    if len(values) != len(set(values)):
        problems.append(f"duplicate option value [json-pointer:{where}]")
    return problems


def _select_problems(element: dict[str, Any], where: str) -> list[str]:
    """static_select: 1 to 100 `options`; external_select: none (Slack asks the app for
    them), `min_query_length` a non-negative integer (docs.slack.dev/reference/block-kit/
    block-elements/select-menu-element)."""
    problems = []
    if "placeholder" in element:
        problems += _text_problems(element["placeholder"], f"{where}/placeholder", 150, plain=True)
    if element["type"] == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not options:
            problems.append(f"must provide options [json-pointer:{where}/options]")
        else:
            problems += options_problems(options, f"{where}/options")
    else:
        if "options" in element:
            problems.append(f"must not provide options [json-pointer:{where}/options]")
        length = element.get("min_query_length", 3)
        if not isinstance(length, int) or length < 0:
            problems.append(
                f"must be a non-negative integer [json-pointer:{where}/min_query_length]"
            )
    return problems


def _block_problems(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        return [f"unsupported type [json-pointer:{where}/type]"]
    kind = block["type"]
    problems: list[str] = []
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"must provide text or fields [json-pointer:{where}]")
        if "text" in block:
            problems += _text_problems(block["text"], f"{where}/text", SECTION_TEXT)
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
            problems.append(f"must have at most {MAX_FIELDS} items [json-pointer:{where}/fields]")
        else:
            for i, item in enumerate(fields):
                problems += _text_problems(item, f"{where}/fields/{i}", FIELD_TEXT)
        if "accessory" in block:
            problems += _element_problems(block["accessory"], f"{where}/accessory")
    elif kind == "header":
        problems += _text_problems(block.get("text"), f"{where}/text", HEADER_TEXT, plain=True)
    elif kind in ("context", "actions"):
        elements = block.get("elements")
        limit = CONTEXT_ELEMENTS if kind == "context" else ACTION_ELEMENTS
        if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
            problems.append(f"must have 1 to {limit} items [json-pointer:{where}/elements]")
            return problems
        ids = []
        for i, element in enumerate(elements):
            here = f"{where}/elements/{i}"
            if kind == "context":
                if isinstance(element, dict) and element.get("type") == "image":
                    continue
                problems += _text_problems(element, here, SECTION_TEXT)
            else:
                problems += _element_problems(element, here)
                if isinstance(element, dict) and "action_id" in element:
                    ids.append(element["action_id"])
        if len(ids) != len(set(ids)):
            problems.append(f"duplicate action_id [json-pointer:{where}/elements]")
    elif kind == "input":
        problems += _text_problems(block.get("label"), f"{where}/label", 2000, plain=True)
        problems += _element_problems(block.get("element"), f"{where}/element")
    return problems


def block_problems(blocks: Any, *, surface: str) -> list[str]:
    """Why Slack would refuse `blocks` on `surface` ("message", "modal", "home"), or []."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    limit = MESSAGE_BLOCKS if surface == "message" else VIEW_BLOCKS
    problems = []
    if len(blocks) > limit:
        problems.append(f"must have at most {limit} items [json-pointer:/blocks]")
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and "block_id" in b]
    if len(block_ids) != len(set(block_ids)):
        problems.append("duplicate block_id [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        problems += _block_problems(block, f"/blocks/{i}")
    return problems


def view_problems(view: dict[str, Any], surface: str) -> list[str]:
    """Why Slack would refuse `view` (a modal or a Home tab), or []."""
    kind = view.get("type")
    if kind not in ("modal", "home") or (surface == "home") != (kind == "home"):
        return ["invalid view type [json-pointer:/view/type]"]
    problems = block_problems(view.get("blocks"), surface=kind)
    if kind == "modal":
        problems += _text_problems(view.get("title"), "/view/title", VIEW_TITLE, plain=True)
        for key in ("submit", "close"):
            if key in view:
                problems += _text_problems(view[key], f"/view/{key}", VIEW_TITLE, plain=True)
    if len(str(view.get("private_metadata", ""))) > PRIVATE_METADATA:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > ID_LENGTH:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return problems


def _texts(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            if isinstance(value, (dict, list)):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def blocks_size(blocks: Any, measure: str = "text") -> int:
    """The size Slack's total limit is checked against (see `msg_blocks_too_long` above)."""
    if measure == "json":
        return len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))
    return sum(len(text) for text in _texts(blocks))
