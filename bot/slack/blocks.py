"""Rendering a `Reply` as Block Kit (the one renderer of the Slack transport).

Layout: a header (title with a status emoji), the text in mrkdwn sections, the
fields in sections of at most 10, each table as aligned monospace text in code
blocks, the table note as context, then the buttons.

Limits kept here (and checked by the tests with slack_sdk's block models): at
most 50 blocks per message, 3000 characters per section text, 2000 per field,
150 per header, 75 per button label, 2000 per button value, 25 buttons per
actions block, unique action ids within a block. A table longer than one page
(`page_rows` rows, or what fits in the blocks left) is paginated: the message
shows the first page and a "More" button (`page.more`, value `<key>:<page>`)
whose pages wait in a `PageStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.slack.pages import Blocks, PageStore
from bot.text import render_table
from core import refs
from core.reply import Action, Reply, Table

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_LABEL = 75
BUTTON_VALUE = 2000
BUTTONS_PER_BLOCK = 25
MAX_TEXT = 4 * SECTION_TEXT - 100  # longer text is cut: a message is not a document
MAX_FIELDS = 40
MAX_LINE = 1000  # a table line longer than this is cut with an ellipsis
FALLBACK_TEXT = 3000
MORE_ACTION = "page.more"

EMOJI = {
    "ok": ":white_check_mark:",
    "info": ":information_source:",
    "pending": ":hourglass_flowing_sand:",
    "denied": ":no_entry:",
    "error": ":x:",
}


@dataclass(frozen=True)
class Rendered:
    """A message ready for chat.postMessage: blocks and the plain-text fallback."""

    blocks: Blocks
    text: str


def escape(text: str) -> str:
    """`&`, `<`, `>` as HTML entities: Slack's control characters, shown literally
    (api.slack.com "Formatting text for app surfaces", escaping text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(ref: refs.Ref) -> str:
    """A reference as a Slack mention: `<@U…>`, `<#C…>`, `<!subteam^S…>`."""
    return {"user": "<@{}>", "channel": "<#{}>", "group": "<!subteam^{}>"}[ref.kind].format(ref.id)


def mrkdwn(text: str) -> str:
    """Reply text (plain text with references) as mrkdwn: references become mentions and
    everything else is escaped, so a name or value from a user or an API never turns into
    a link, a mention or `<!channel>`."""
    return refs.render(text, mention, escape)


def plain_code(text: str) -> str:
    """Text for a code block or a plain_text object: references as `@U…` / `#C…`, escaped."""
    return escape(refs.plain(text))


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def section(text: str) -> dict[str, Any]:
    """One mrkdwn section (text cut to the section limit)."""
    return {"type": "section", "text": _mrkdwn(cut(text, SECTION_TEXT))}


def context(text: str) -> dict[str, Any]:
    """One context block with a mrkdwn line."""
    return {"type": "context", "elements": [_mrkdwn(cut(text, SECTION_TEXT))]}


def header(text: str) -> dict[str, Any]:
    """A header block (plain text, cut to 150 characters)."""
    return {"type": "header", "text": _plain(cut(text, HEADER_TEXT))}


def split_text(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """Split `text` into pieces of at most `limit` characters, at line ends when possible."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines():
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def _text_blocks(reply: Reply) -> Blocks:
    text = mrkdwn(reply.text.strip())
    if not reply.title:
        text = f"{EMOJI[reply.status]} {text}".strip()
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n… (cut)"
    return [section(piece) for piece in split_text(text)]


def _field_blocks(reply: Reply) -> Blocks:
    fields = reply.fields[:MAX_FIELDS]
    blocks = []
    for start in range(0, len(fields), 10):
        group = fields[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(cut(f"*{mrkdwn(label)}*\n{mrkdwn(value) or '-'}", FIELD_TEXT))
                    for label, value in group
                ],
            }
        )
    if len(reply.fields) > MAX_FIELDS:
        blocks.append(context(f"{len(reply.fields) - MAX_FIELDS} more fields not shown"))
    return blocks


def _code(lines: list[str]) -> dict[str, Any]:
    return section("```\n" + "\n".join(lines) + "\n```")


def table_units(table: Table, page_rows: int) -> list[tuple[Blocks, int]]:
    """A table as (blocks, row count) units: code sections of at most `page_rows` rows
    and 3000 characters each (the column header repeated in each); the note last."""
    lines = [plain_code(cut(line, MAX_LINE)) for line in render_table(table)]
    head, rows = lines[:2], lines[2:]
    if table.note:
        rows = rows[:-1]
    budget = SECTION_TEXT - len("```\n\n```") - sum(len(h) + 1 for h in head)
    units: list[tuple[Blocks, int]] = []
    chunk: list[str] = []
    size = 0
    for row in rows:
        if chunk and (len(chunk) >= page_rows or size + len(row) + 1 > budget):
            units.append(([_code(head + chunk)], len(chunk)))
            chunk, size = [], 0
        chunk.append(row)
        size += len(row) + 1
    if chunk or not units:
        units.append(([_code(head + chunk)], len(chunk)))
    if table.note:
        units[-1][0].append(context(mrkdwn(table.note)))
    return units


def button(action: Action, action_id: str) -> dict[str, Any] | None:
    """A button for `action` (None when its value cannot fit in a button)."""
    value = action.value if action.action_id != "command" else action.command
    if len(value) > BUTTON_VALUE:
        return None
    element: dict[str, Any] = {
        "type": "button",
        "text": _plain(cut(action.label, BUTTON_LABEL)),
        "action_id": action_id,
        "value": value,
    }
    if action.style:
        element["style"] = action.style
    return element


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


def fallback_text(reply: Reply) -> str:
    """Plain text for notifications and clients without blocks."""
    parts = [reply.title or "", reply.text]
    text = mrkdwn("\n".join(p for p in parts if p).strip()) or reply.status
    return cut(text, FALLBACK_TEXT)


def _paginate(units: list[tuple[Blocks, int]], first_budget: int, page_rows: int) -> list[Blocks]:
    later_budget = MAX_BLOCKS - 2  # a page: its table blocks + context + "More"
    pages: list[Blocks] = [[]]
    rows_in_page = 0
    for blocks, rows in units:
        budget = first_budget if len(pages) == 1 else later_budget
        full = rows_in_page + rows > page_rows or len(pages[-1]) + len(blocks) > budget
        if pages[-1] and full:
            pages.append([])
            rows_in_page = 0
        pages[-1].extend(blocks)
        rows_in_page += rows
    return pages


def render(reply: Reply, *, pages: PageStore | None = None, page_rows: int = 40) -> Rendered:
    """Block Kit for `reply` (private_text is never rendered: it goes elsewhere).

    Tables beyond the first page are stored in `pages` behind a "More" button;
    without a store they are cut with a note.
    """
    head: Blocks = []
    if reply.title:
        head.append(header(f"{EMOJI[reply.status]} {refs.plain(reply.title)}"))
    head.extend(_text_blocks(reply))
    head.extend(_field_blocks(reply))
    tail = _action_blocks(reply.actions)
    units = [unit for table in reply.tables for unit in table_units(table, page_rows)]
    first_budget = MAX_BLOCKS - len(head) - len(tail) - 1
    table_pages = _paginate(units, first_budget, page_rows) if units else [[]]
    blocks = head + table_pages[0]
    if len(table_pages) > 1:
        if pages is not None:
            key = pages.put(table_pages[1:], reply.title or "")
            blocks.append(more_block(key, 1, len(table_pages)))
        else:
            blocks.append(context(f"{len(table_pages) - 1} more page(s) not shown"))
    blocks.extend(tail)
    if not blocks:
        blocks.append(section(EMOJI[reply.status]))
    return Rendered(blocks[:MAX_BLOCKS], fallback_text(reply))


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
    blocks = [context(f"{title}(page {page + 1} of {total})"), *stored.pages[page - 1]]
    if page < len(stored.pages):
        blocks.append(more_block(key, page + 1, total))
    return Rendered(blocks, f"{title}page {page + 1} of {total}")
