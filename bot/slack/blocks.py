"""Rendering a `Reply` as Block Kit: the one renderer of the Slack transport.

Every piece of text that reaches Slack as mrkdwn goes through `mrkdwn()` (or
`plain_code()` inside code blocks): reply text, titles, fields, table cells, notes,
the requester line, the fallback text, and what home.py, decisions.py and views.py
show. Reply text is plain text with two kinds of markup the core writes on purpose:
typed references (core.refs, rendered as mentions) and backtick code spans. The
rest is data from people and APIs, shown literally:

- `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;`: Slack's control characters, "must be
  escaped" (api.slack.com/reference/surfaces/formatting#escaping), so a value such as
  `<!channel>` or `<https://x|y>` never becomes a mention or a link.
- `*`, `_`, `~` (bold, italic, strike): Slack documents no escape for them (neither a
  backslash nor an entity; the `verbatim` flag of a text object only stops automatic
  linking and name parsing, docs.slack.dev/reference/block-kit/composition-objects/
  text-object). Slack's formatting reference documents code spans
  (api.slack.com/reference/surfaces/formatting, "code"); that no other formatting
  applies inside them is not written there but is how Slack renders them and what
  other chat-ops bots rely on for the same reason (gitlab-com/chatops merge request
  93: "The use of backticks avoid slack breaking commands that includes formatting
  characters like *"). So every word of prose holding one of them is shown as
  inline code: `R&D_*prod*` appears as the monospace `R&D_*prod*`, character for
  character, and can be copied back into a command. The alternatives change what is
  copied: look-alike characters, or date-formatting fallbacks as jsx-slack does
  (github.com/yhatt/jsx-slack docs/about-escape-and-exact-mode.md: "Slack does not
  provide how to escape special characters for formatting text").
- Backticks: the core's own code spans pass as code; inside code blocks (tables,
  fenced text) a backtick becomes `ˋ` (U+02CB), so data cannot close the block.

Secrets: every text goes through the process's redactor (core/redaction.py) before it is
escaped: `mrkdwn`, `plain_code`, `plain`, button values and the files beside a message
(`Overflow`). This is the one place Slack text is made, so whatever a Reply, the
tracker, App Home or a modal holds, Slack never receives a secret the process knows or
one that looks like one. `render(..., private=True)` is for the requester alone
(`Reply.private_text`): the one-time links they asked for stay whole.

Layout: a header (title with a status emoji), the requester line (context), the text
in mrkdwn sections, the fields in sections of at most 10, each table as aligned
monospace text in code blocks (people and channels by name when `names` knows them),
the table note as context, then the buttons.

Limits kept here (and enforced by the stand-in, simulators/slack.py): at most 50
blocks, 3000 characters per section text, 2000 per field, 150 per header, 75 per
button label, 2000 per button value, 25 buttons per actions block, unique action ids
within a block, and a budget for the whole message (`MESSAGE_BUDGET` characters of
its blocks' compact JSON, below Slack's undocumented ~12,000-character total, see
`msg_blocks_too_long`). What does not fit goes further: table rows to pages behind a
"More" button (`page.more`, value `<key>:<page>`, pages kept in a `PageStore`), and
any text, field value or table line that would be cut to a file shown beside the
message (`Rendered.files`), named on the message with its size and sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.slack.menus import (
    BLOCK_PREFIX,
    OPTION_TEXT,
    OPTION_VALUE,
    PICK_ACTION,
    STATIC_OPTIONS,
)
from bot.slack.pages import Blocks, PageStore
from bot.text import render_table
from core import refs
from core.redaction import redact
from core.reply import Action, Choice, Option, Reply, Table

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_LABEL = 75
BUTTON_VALUE = 2000
BUTTONS_PER_BLOCK = 25
MAX_FIELDS = 40
MAX_LINE = 990  # characters of a table line as sent (escaped); longer ones are cut (the
# whole table goes to the file); two header lines and one row always fit in a section
FALLBACK_TEXT = 3000
MESSAGE_BUDGET = 11_000  # compact JSON characters of all blocks of one message
TABLE_ROOM = 3_500  # budget kept for the first page of tables when text is long
MORE_ACTION = "page.more"
SELECT_BUDGET = 7_000  # characters of a static menu; a larger one is searched (external)
LOOKALIKE_BACKTICK = "\u02cb"

EMOJI = {
    "ok": ":white_check_mark:",
    "info": ":information_source:",
    "pending": ":hourglass_flowing_sand:",
    "denied": ":no_entry:",
    "error": ":x:",
}


@dataclass(frozen=True)
class Overflow:
    """A file shown beside a message: what did not fit in it, whole (redacted)."""

    filename: str
    content: str
    title: str

    def __post_init__(self) -> None:
        for name in ("filename", "content", "title"):
            object.__setattr__(self, name, redact(getattr(self, name)))

    @property
    def digest(self) -> str:
        """sha256 of the content (UTF-8), hex."""
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rendered:
    """A message ready for chat.postMessage: blocks, the plain-text fallback, and the
    files that must be shown beside it."""

    blocks: Blocks
    text: str
    files: tuple[Overflow, ...] = ()


# -- text ------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """`&`, `<`, `>` as HTML entities: Slack's control characters, shown literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(ref: refs.Ref) -> str:
    """A reference as a Slack mention (`<@U…>`, `<#C…>`, `<!subteam^S…>`), or a thread as a
    link to its root message (`<https://slack.com/archives/C…/p…|thread>`)."""
    if isinstance(ref, refs.ThreadRef):
        return f"<https://slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}|thread>"
    return {"user": "<@{}>", "channel": "<#{}>", "group": "<!subteam^{}>"}[ref.kind].format(ref.id)


_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_WORD = re.compile(r"\S+")


def _prose(text: str) -> str:
    """Data outside code: escaped, and every word that could format shown as code."""

    def word(match: re.Match[str]) -> str:
        token = match.group(0)
        if not any(c in token for c in "*_~`"):
            return token
        return "`" + token.replace("`", LOOKALIKE_BACKTICK) + "`"

    return _WORD.sub(word, escape(text))


def _name_of(ref: refs.Ref, names: Mapping[str, str] | None) -> str:
    sigil = "#" if ref.kind == "channel" else "@"
    return sigil + ((names or {}).get(ref.id) or ref.id).lstrip("#@")


def mrkdwn(text: str, names: Mapping[str, str] | None = None, *, private: bool = False) -> str:
    """Reply text (plain text with references and backtick code spans) as mrkdwn, redacted:
    references become mentions (inside code: `@name`), everything else is shown
    literally (see the module docstring)."""
    text = redact(text, private=private)
    out: list[str] = []
    position = 0
    for match in _CODE.finditer(text):
        out.append(refs.render(text[position : match.start()], mention, _prose))
        out.append(escape(refs.render(match.group(0), lambda r: _name_of(r, names))))
        position = match.end()
    out.append(refs.render(text[position:], mention, _prose))
    return "".join(out)


def plain_code(text: str, names: Mapping[str, str] | None = None, *, private: bool = False) -> str:
    """Text for a code block, redacted: references as `@name` / `#name` (or the id),
    escaped, backticks replaced so the block cannot be closed from inside."""
    shown = refs.render(redact(text, private=private), lambda r: _name_of(r, names))
    return escape(shown.replace("`", LOOKALIKE_BACKTICK))


def plain(text: str, names: Mapping[str, str] | None = None, *, private: bool = False) -> str:
    """Text for a plain_text object (headers, labels), redacted: references as names or ids."""
    return refs.render(redact(text, private=private), lambda r: _name_of(r, names))


def safe_cut(rendered: str, limit: int, marker: str = "…") -> str:
    """Rendered mrkdwn cut to at most `limit` characters (marker included), never inside
    a mention, link or entity, and with an open code span or block closed."""
    if len(rendered) <= limit:
        return rendered
    end = max(0, limit - len(marker) - 4)
    head = rendered[:end]
    opening = max(head.rfind("<"), head.rfind("&"))
    if opening >= 0 and not re.search(r"[>;]", head[opening:]):
        head = head[:opening]
    fences = head.count("```")
    if fences % 2:
        return head.rstrip("`") + marker + "\n```"
    if (head.count("`") - 3 * fences) % 2:
        return head + "`" + marker
    return head + marker


def cut(text: str, limit: int) -> str:
    """Plain `text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_point(text: str, limit: int) -> int:
    """Where to cut rendered mrkdwn at or before `limit`: not inside a mention, link or
    entity (at least one character, so a cut always makes progress)."""
    end = limit
    head = text[:end]
    opening = max(head.rfind("<"), head.rfind("&"))
    if opening > 0 and not re.search(r"[>;]", head[opening:]):
        end = opening
    return max(1, end)


def split_text(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """Rendered mrkdwn in pieces of at most `limit` characters, at line ends when
    possible, never inside a mention or entity; a code span or block split across
    pieces is closed and reopened, so nothing in it formats."""
    pieces: list[str] = []
    current = ""
    room = limit - 8  # for closing and reopening a code span or block
    for line in text.splitlines():
        while len(line) > room:
            if current:
                pieces.append(current)
                current = ""
            cut_at = _cut_point(line, room)
            head, line = line[:cut_at], line[cut_at:]
            if (head.count("`") - 3 * head.count("```")) % 2:
                head, line = head + "`", "`" + line
            pieces.append(head)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > room:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    balanced: list[str] = []
    inside = False
    for piece in pieces:
        if inside:
            piece = "```\n" + piece
        inside = piece.count("```") % 2 == 1
        balanced.append(piece + ("\n```" if inside else ""))
    return [p for p in balanced if p.strip()]


# -- blocks ------------------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def section(text: str) -> dict[str, Any]:
    """One mrkdwn section of already rendered text (cut safely to the section limit)."""
    return {"type": "section", "text": _mrkdwn(safe_cut(text, SECTION_TEXT))}


def context(text: str) -> dict[str, Any]:
    """One context block with a line of already rendered mrkdwn."""
    return {"type": "context", "elements": [_mrkdwn(safe_cut(text, SECTION_TEXT))]}


def header(text: str) -> dict[str, Any]:
    """A header block (plain text, cut to 150 characters)."""
    return {"type": "header", "text": _plain(cut(text, HEADER_TEXT))}


def size(blocks: Blocks) -> int:
    """What a message's blocks weigh against `MESSAGE_BUDGET` (compact JSON characters)."""
    return len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))


def _code(lines: list[str]) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn("```\n" + "\n".join(lines) + "\n```")}


def button(action: Action, action_id: str) -> dict[str, Any] | None:
    """A button for `action` (None when its value cannot fit in a button)."""
    value = redact(action.value if action.action_id != "command" else action.command)
    if len(value) > BUTTON_VALUE or not value:
        return None
    element: dict[str, Any] = {
        "type": "button",
        "text": _plain(cut(plain(action.label), BUTTON_LABEL)),
        "action_id": action_id,
        "value": value,
    }
    if action.style:
        element["style"] = action.style
    return element


def menu_option(key: str, index: int, option: Option) -> dict[str, Any]:
    """One option of a select menu: its label, and `<menu key>:<index>` as its value."""
    value = f"{key}:{index}"
    assert len(value) <= OPTION_VALUE
    return {"text": _plain(cut(plain(option.label), OPTION_TEXT)), "value": value}


def select_block(choice: Choice, key: str) -> dict[str, Any]:
    """The menu of a Choice: a static_select of its options (up to 100, and within
    SELECT_BUDGET characters of the message's budget), else an external_select whose
    options are asked for as the person types (bot/slack/menus.py)."""
    placeholder = _plain(cut(plain(choice.prompt), 150))
    block_id = f"{BLOCK_PREFIX}{key}"
    if len(choice.options) <= STATIC_OPTIONS:
        static = {
            "type": "static_select",
            "action_id": PICK_ACTION,
            "placeholder": placeholder,
            "options": [menu_option(key, i, o) for i, o in enumerate(choice.options)],
        }
        block = {"type": "actions", "block_id": block_id, "elements": [static]}
        if size([block]) <= SELECT_BUDGET:
            return block
    external = {
        "type": "external_select",
        "action_id": PICK_ACTION,
        "placeholder": placeholder,
        "min_query_length": 0,
    }
    return {"type": "actions", "block_id": block_id, "elements": [external]}


def _action_blocks(actions: list[Action]) -> Blocks:
    elements = []
    for index, action in enumerate(actions[:BUTTONS_PER_BLOCK]):
        # several plain-command buttons: action ids must be unique within a block
        action_id = action.action_id if action.action_id != "command" else f"command.{index}"
        element = button(action, action_id)
        if element is not None:
            elements.append(element)
    return [{"type": "actions", "elements": elements}] if elements else []


def more_block(key: str, page: int, of: int) -> dict[str, Any]:
    """The actions block with the "More" button for page `page` (1-based) of `of`."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": _plain(f"More ({page + 1}/{of})"),
                "action_id": MORE_ACTION,
                "value": f"{key}:{page}",
            }
        ],
    }


def fallback_text(
    reply: Reply, names: Mapping[str, str] | None = None, *, private: bool = False
) -> str:
    """Plain text for notifications and clients without blocks, never cut mid-mention."""
    parts = [reply.title or "", reply.text]
    text = mrkdwn("\n".join(p for p in parts if p).strip(), names, private=private)
    text = text or reply.status
    return safe_cut(text, FALLBACK_TEXT)


def unfenced(value: str) -> str:
    """A value without the code fence around it (what a digest is taken of)."""
    stripped = value.strip()
    if stripped.startswith("```") and stripped.endswith("```") and len(stripped) >= 6:
        return stripped[3:-3].strip("\n")
    return value


def digest_note(value: str, filename: str) -> str:
    """What a cut value says about itself: its size and sha256 (of the value without a
    code fence around it), and where it is whole."""
    whole = unfenced(value)
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()
    return f"\n… ({len(whole):,} characters, sha256 {digest[:16]}…; whole in {filename})"


# -- the whole reply -------------------------------------------------------------------------------


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", refs.plain(text).lower()).strip("-")
    return slug[:60] or "reply"


@dataclass
class _Build:
    """One reply being laid out; collects what must go to the overflow file."""

    reply: Reply
    names: Mapping[str, str] | None
    filename: str
    private: bool = False
    spill: list[str] = field(default_factory=list)

    def md(self, text: str) -> str:
        return mrkdwn(text, self.names, private=self.private)

    def keep(self, heading: str, value: str) -> None:
        self.spill.append(f"== {heading} ==\n{value.rstrip()}\n")

    def text_blocks(self, budget: int) -> Blocks:
        reply = self.reply
        text = self.md(reply.text.strip())
        if not reply.title:
            text = f"{EMOJI[reply.status]} {text}".strip()
        blocks: Blocks = []
        for piece in split_text(text):
            block = section(piece)
            if size([*blocks, block]) > budget:
                note = section(
                    f"… the whole text ({len(reply.text):,} characters) is in {self.filename}"
                )
                while blocks and size([*blocks, note]) > budget:
                    blocks.pop()
                blocks.append(note)
                self.keep("Text", refs.plain(reply.text))
                return blocks
            blocks.append(block)
        return blocks

    def field_blocks(self, budget: int) -> Blocks:
        reply = self.reply
        blocks: Blocks = []
        fields = reply.fields
        rendered = []
        for label, value in fields:
            value = redact(value, private=self.private)  # the digest is of what is shown
            head = f"*{self.md(label)}*\n"
            body = self.md(value) or "-"
            if len(head) + len(body) > FIELD_TEXT:
                note = digest_note(refs.plain(value), self.filename)
                body = safe_cut(body, FIELD_TEXT - len(head) - len(note) - 2, marker="") + note
                self.keep(refs.plain(label), unfenced(refs.plain(value)))
            rendered.append(_mrkdwn(head + body))
        shown = 0
        for start in range(0, min(len(rendered), MAX_FIELDS), 10):
            block = {"type": "section", "fields": rendered[start : start + 10]}
            if size([*blocks, block]) > budget:
                break
            blocks.append(block)
            shown = start + len(block["fields"])
        if shown < len(fields):
            for label, value in fields[shown:]:
                self.keep(refs.plain(label), refs.plain(value))
            blocks.append(context(f"{len(fields) - shown} more fields are in {self.filename}"))
        return blocks

    def table_units(self, table: Table, page_rows: int) -> list[tuple[Blocks, int]]:
        """A table as (blocks, row count) units: code sections of at most `page_rows` rows
        and 3000 characters each (the column header repeated in each); the note last."""
        full = render_table(table, self.names or {})
        lines = [plain_code(line, private=self.private) for line in full]
        if any(len(line) > MAX_LINE for line in lines):
            self.keep(f"Table {', '.join(table.columns)}", "\n".join(full))
            lines = [safe_cut(line, MAX_LINE) for line in lines]
        head, rows = lines[:2], lines[2:]
        if table.note:
            rows = rows[:-1]
        room = SECTION_TEXT - len("```\n\n```") - sum(len(h) + 1 for h in head)
        units: list[tuple[Blocks, int]] = []
        chunk: list[str] = []
        used = 0
        for row in rows:
            if chunk and (len(chunk) >= page_rows or used + len(row) + 1 > room):
                units.append(([_code(head + chunk)], len(chunk)))
                chunk, used = [], 0
            chunk.append(row)
            used += len(row) + 1
        if chunk or not units:
            units.append(([_code(head + chunk)], len(chunk)))
        if table.note:
            units[-1][0].append(context(self.md(table.note)))
        return units


def table_units(
    table: Table, page_rows: int, names: Mapping[str, str] | None = None
) -> list[tuple[Blocks, int]]:
    """A table as code-block units (see `_Build.table_units`)."""
    return _Build(Reply(), names, "reply.txt").table_units(table, page_rows)


def _paginate(
    units: list[tuple[Blocks, int]], first_blocks: int, first_chars: int, page_rows: int
) -> list[Blocks]:
    """Units in pages: at most `page_rows` rows, and the first page within `first_blocks`
    blocks and `first_chars` characters, later ones within a whole message's budget."""
    more = size([more_block("k" * 11, 1, 99)])
    later_chars = MESSAGE_BUDGET - more - size([context("x" * 200)])
    pages: list[Blocks] = [[]]
    rows_in_page = 0
    for blocks, rows in units:
        first = len(pages) == 1
        block_room = first_blocks if first else MAX_BLOCKS - 2
        char_room = first_chars if first else later_chars
        full = (
            rows_in_page + rows > page_rows
            or len(pages[-1]) + len(blocks) > block_room
            or size(pages[-1] + blocks) > char_room
        )
        if full and (pages[-1] or first):
            pages.append([])
            rows_in_page = 0
        pages[-1].extend(blocks)
        rows_in_page += rows
    return pages


def render(
    reply: Reply,
    *,
    pages: PageStore | None = None,
    page_rows: int = 40,
    names: Mapping[str, str] | None = None,
    menu: str | None = None,
    private: bool = False,
) -> Rendered:
    """Block Kit for `reply` within one message's limits, redacted (private_text is never
    rendered: it goes elsewhere; `private` renders a reply made of it, for its requester).

    A `reply.choice` becomes a select menu when `menu` (its key in the MenuStore) is
    given. Tables beyond the first page are stored in `pages` behind a "More" button;
    without a store they are cut with a note. Text, field values and table lines that
    would be cut are kept whole in `Rendered.files` (one file, named on the message
    with its size and sha256).
    """
    slug = _slug(redact(reply.title or reply.text[:40]))
    build = _Build(reply, names, f"{slug}.txt", private)
    head: Blocks = []
    question = [select_block(reply.choice, menu)] if reply.choice and menu else []
    if reply.title:
        head.append(header(f"{EMOJI[reply.status]} {plain(reply.title, names, private=private)}"))
    if reply.context:
        head.append(context(build.md(reply.context)))
    tail = question + _action_blocks(reply.actions)
    file_note = size([context("x" * 260)])
    units = [unit for table in reply.tables for unit in build.table_units(table, page_rows)]
    room = MESSAGE_BUDGET - size(head + tail) - file_note - (TABLE_ROOM if units else 0)
    text = build.text_blocks(room // 2 if reply.fields else room)
    head.extend(text)
    head.extend(build.field_blocks(room - size(text)))
    more = size([more_block("k" * 11, 1, 99)])
    first_chars = MESSAGE_BUDGET - size(head + tail) - file_note - more
    first_blocks = MAX_BLOCKS - len(head) - len(tail) - 2
    table_pages = _paginate(units, first_blocks, first_chars, page_rows) if units else [[]]
    blocks = head + table_pages[0]
    if len(table_pages) > 1:
        if pages is not None:
            key = pages.put(table_pages[1:], refs.plain(reply.title or ""))
            blocks.append(more_block(key, 1, len(table_pages)))
        else:
            blocks.append(context(f"{len(table_pages) - 1} more page(s) not shown"))
    files: tuple[Overflow, ...] = ()
    if build.spill:
        overflow = Overflow(build.filename, "\n".join(build.spill), refs.plain(reply.title or ""))
        files = (overflow,)
        blocks.append(
            context(
                f":paperclip: Shown whole in {mrkdwn(overflow.filename)}, beside this message "
                f"({len(overflow.content):,} characters, sha256 {overflow.digest})"
            )
        )
    blocks.extend(tail)
    if not blocks:
        blocks.append(section(EMOJI[reply.status]))
    return Rendered(blocks[:MAX_BLOCKS], fallback_text(reply, names, private=private), files)


def render_page(pages: PageStore, value: str) -> Rendered | None:
    """The page a "More" click asks for (`<key>:<page>`), or None when it expired."""
    key, _, number = value.partition(":")
    stored = pages.get(key)
    if stored is None or not number.isdigit():
        return None
    page = int(number)
    if not 1 <= page <= len(stored.pages):
        return None
    total = len(stored.pages) + 1
    title = f"{stored.title} " if stored.title else ""
    blocks = [context(f"{mrkdwn(title)}(page {page + 1} of {total})"), *stored.pages[page - 1]]
    if page < len(stored.pages):
        blocks.append(more_block(key, page + 1, total))
    return Rendered(blocks, f"{mrkdwn(title)}page {page + 1} of {total}")
