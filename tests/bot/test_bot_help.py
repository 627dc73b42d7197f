"""`help` reads in an 80-100 column terminal and in a Slack code block (issue 18, case 5)."""

from __future__ import annotations

import html

from bot.slack.blocks import render as slack_render
from bot.text import render
from core.invocation import Invocation

WIDTH = 100


async def every_help(bot) -> list:  # type: ignore[no-untyped-def]
    lines = ["help", *(f"help {verb.name}" for verb in bot.registry.all())]
    return [await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text=line)) for line in lines]


async def test_help_fits_the_shell(bot):
    for reply in await every_help(bot):
        long = [line for line in render(reply).splitlines() if len(line) > WIDTH]
        assert long == [], reply.title


async def test_help_fits_a_slack_code_block(bot):
    overview, *_ = await every_help(bot)
    rendered = slack_render(overview, page_rows=1000)
    code = [
        block["text"]["text"]
        for block in rendered.blocks
        if block.get("type") == "section" and block["text"]["text"].startswith("```")
    ]
    lines = [html.unescape(line) for text in code for line in text.strip("`\n").splitlines()]
    assert len(lines) > 100  # every group's table is there
    assert max(len(line) for line in lines) <= WIDTH
    assert not rendered.files  # nothing had to be cut into a file
