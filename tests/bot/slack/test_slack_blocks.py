"""Reply -> Block Kit: layout and limits, checked with slack_sdk's block models."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.blocks import MORE_ACTION, render, render_page
from bot.slack.pages import PageStore
from core.reply import Action, Reply, Table
from simulators.slack import blocks_size
from tests.bot.slack.slack_support import validate_blocks


def _buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_header_has_the_status_emoji_and_fields_are_grouped_by_ten() -> None:
    reply = Reply(
        status="denied", title="Not allowed", text="no", fields=[(f"k{i}", "v") for i in range(23)]
    )
    rendered = render(reply)
    validate_blocks(rendered.blocks)
    assert rendered.blocks[0]["type"] == "header"
    assert rendered.blocks[0]["text"]["text"].startswith(":no_entry:")
    field_counts = [len(b["fields"]) for b in rendered.blocks if "fields" in b]
    assert field_counts == [10, 10, 3]
    assert rendered.text.startswith("Not allowed")


def test_command_buttons_carry_the_command_line_with_unique_ids() -> None:
    reply = Reply(
        text="x",
        actions=[
            Action(label="Show", command="/gdb show a"),
            Action(label="Show b", command="/gdb show b", style="primary"),
            Action(
                label="Approve", command="/gdb approve X", action_id="approval.approve", value="X"
            ),
        ],
    )
    blocks = render(reply).blocks
    validate_blocks(blocks)
    buttons = _buttons(blocks)
    assert [b["value"] for b in buttons] == ["/gdb show a", "/gdb show b", "X"]
    assert [b["action_id"] for b in buttons] == ["command.0", "command.1", "approval.approve"]


def test_a_long_table_is_paginated_and_every_page_is_valid() -> None:
    pages = PageStore()
    table = Table(columns=["Name", "State"], rows=[[f"db-{i}", "running"] for i in range(500)])
    rendered = render(Reply(title="Databases", tables=[table]), pages=pages, page_rows=40)
    validate_blocks(rendered.blocks)
    [more] = [b for b in _buttons(rendered.blocks) if b["action_id"] == MORE_ACTION]
    seen = 0
    value: str | None = more["value"]
    while value:
        page = render_page(pages, value)
        assert page is not None
        validate_blocks(page.blocks)
        seen += 1
        nexts = [b for b in _buttons(page.blocks) if b["action_id"] == MORE_ACTION]
        value = nexts[0]["value"] if nexts else None
    assert seen == 500 // 40  # 13 pages in all: the message + 12
    assert render_page(pages, "unknown:1") is None


def test_without_a_store_the_rest_is_cut_with_a_note() -> None:
    table = Table(columns=["n"], rows=[[str(i)] for i in range(100)])
    blocks = render(Reply(tables=[table]), page_rows=10).blocks
    validate_blocks(blocks)
    assert "more page(s) not shown" in str(blocks)


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=60, deadline=None)
@given(
    title=st.none() | text,
    body=st.text(max_size=20000),
    fields=st.lists(st.tuples(text, st.text(max_size=3000)), max_size=60),
    rows=st.lists(st.lists(st.text(max_size=1500), min_size=3, max_size=3), max_size=300),
    labels=st.lists(text, max_size=40),
)
def test_any_reply_renders_within_limits(
    title: str | None,
    body: str,
    fields: list[tuple[str, str]],
    rows: list[list[str]],
    labels: list[str],
) -> None:
    reply = Reply(
        status="ok",
        title=title,
        text=body,
        fields=fields,
        tables=[Table(columns=["a", "b", "c"], rows=rows, note="note")],
        actions=[Action(label=label or "x", command="/gdb " + label * 10) for label in labels],
    )
    pages = PageStore()
    rendered = render(reply, pages=pages)
    validate_blocks(rendered.blocks)
    assert blocks_size(rendered.blocks, "json") <= 12000  # Slack's total, however measured
    assert len(rendered.text) <= 3000
    for button in _buttons(rendered.blocks):
        if button["action_id"] == MORE_ACTION:
            page = render_page(pages, button["value"])
            assert page is not None
            validate_blocks(page.blocks)
            assert blocks_size(page.blocks, "json") <= 12000


def test_text_from_users_and_apis_is_escaped_and_references_become_mentions():
    from core.refs import ChannelRef, GroupRef, UserRef

    reply = Reply(
        title="R&D <b>",
        text=f"{UserRef('U0BOB')} asked in {ChannelRef('C0DEV')}: value <!channel> & a > b",
        fields=[("Approvers", f"{GroupRef('S0DBA')} <@U0FAKE>")],
        tables=[Table(columns=["Who"], rows=[[f"{UserRef('U0BOB')} <x>"]])],
    )
    rendered = render(reply)
    body = str(rendered.blocks)
    assert "<@U0BOB> asked in <#C0DEV>: value &lt;!channel&gt; &amp; a &gt; b" in body
    assert "<!subteam^S0DBA> &lt;@U0FAKE&gt;" in body
    assert "@U0BOB &lt;x&gt;" in body  # inside a code block a mention would not render
    assert "<!channel>" not in body and "<@U0FAKE>" not in body
    assert "&lt;!channel&gt;" in rendered.text


def test_hostile_replies_stay_within_every_rule_of_the_stand_in() -> None:
    """Long, entity-heavy text, fields and cells (escaping makes them longer): every message
    and every "More" page passes the stand-in's Block Kit rules and Slack's total."""
    import random
    import string

    from core.refs import UserRef
    from simulators.slack import block_problems

    rng = random.Random(16)

    def junk(n: int) -> str:
        return "".join(rng.choices(string.ascii_letters + " *_~`<>&\n" + "é🦄", k=n))

    for _ in range(40):  # each costs ~0.2 s: non-ASCII text runs every redaction pattern
        reply = Reply(
            title=junk(rng.randint(0, 300)) or None,
            context=f"{UserRef('U0ALICE')} ran `/gdb x`",
            text=junk(rng.choice([0, 10, 3000, 20000])) + str(UserRef("U0BOB")),
            fields=[
                (junk(20), junk(rng.choice([5, 2500, 5000]))) for _ in range(rng.randint(0, 45))
            ],
            tables=[
                Table(
                    columns=["a", "b", "c"],
                    rows=[[junk(rng.choice([3, 900, 1500])) for _ in range(3)] for _ in range(60)],
                    note="n",
                )
            ],
            actions=[
                Action(label="x", command="/gdb x " + junk(5)) for _ in range(rng.randint(0, 30))
            ],
        )
        pages = PageStore()
        rendered = render(reply, pages=pages)
        messages = [rendered.blocks]
        for button in _buttons(rendered.blocks):
            if button["action_id"] == MORE_ACTION:
                page = render_page(pages, button["value"])
                assert page is not None
                messages.append(page.blocks)
        for blocks in messages:
            assert block_problems(blocks, surface="message") == []
            assert blocks_size(blocks, "json") <= 12000


def test_a_long_value_split_across_sections_stays_code_in_every_piece() -> None:
    from bot.slack.blocks import mrkdwn, split_text

    pieces = split_text(mrkdwn("start " + "a_b*c" * 2500 + " & end"))
    assert len(pieces) > 1
    for piece in pieces:
        assert len(piece) <= 3000
        assert (piece.count("`") - 3 * piece.count("```")) % 2 == 0, piece[:40]
        assert not piece.endswith("&") and "&amp" not in piece[-4:]


def test_a_thread_reference_is_a_link_to_its_root_message():
    from bot.slack.blocks import mrkdwn
    from core.refs import ThreadRef

    text = mrkdwn(f"failed, see {ThreadRef.of('C0DEV', '1700000000.000100')} <x>")
    assert (
        text == "failed, see <https://slack.com/archives/C0DEV/p1700000000000100|thread> &lt;x&gt;"
    )
