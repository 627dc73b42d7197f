"""The transports' last gate: the Slack renderer, the shell renderer and the log records
redact whatever reaches them, whether or not the Reply was redacted before (App Home, a
modal, the tracker and the scheduler make text of their own)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from bot.logs import JsonFormatter, install_redaction
from bot.slack.blocks import Overflow, mrkdwn, render
from bot.text import render as shell_render
from core.redaction import remember
from core.reply import Action, Attachment, Reply, Table

SECRET = "sentinel-transport-secret-51c0"
SIGNED = "https://b.s3.amazonaws.com/x.zip?X-Amz-Expires=60&X-Amz-Signature=" + "7f" * 32
LINK = "https://s3.example/export.zip?X-Amz-Expires=300&X-Amz-Signature=" + "3c" * 32
remember(SECRET)
remember(LINK, "link")
LEAKS = (SECRET, "7f" * 32, "3c" * 32)


def raw_reply() -> Reply:
    """A Reply nobody redacted, with a secret in every part."""
    return Reply(
        title=f"title {SECRET}",
        context=f"ran `/gdb import x {SIGNED}`",
        text=f"text {SECRET} {SIGNED}",
        fields=[("Field", f"value {SECRET}"), ("Long", "x" * 2500 + SECRET)],
        tables=[Table(columns=["c"], rows=[[f"cell {SECRET}"]] * 3, note=f"note {SECRET}")],
        actions=[Action(label=f"label {SECRET}", command=f"/gdb import x {SIGNED}")],
        private_text=f"{LINK} {SECRET}",
        attachment=Attachment(filename="a.txt", content=f"content {SECRET}"),
    )


def test_the_slack_renderer_redacts_every_part_it_makes() -> None:
    rendered = render(raw_reply())
    made = json.dumps([rendered.blocks, rendered.text, [vars(f) for f in rendered.files]])
    for leak in LEAKS:
        assert leak not in made, leak
    assert "[REDACTED]" in made and "b.s3.amazonaws.com/x.zip" in made
    assert rendered.files, "the long field went to a file, redacted"


def test_only_the_requesters_private_part_keeps_their_link() -> None:
    private = render(Reply(text=f"Download once: {LINK} {SECRET}"), private=True)
    shown = json.dumps(private.blocks)
    assert LINK.replace("&", "&amp;") in shown and SECRET not in shown
    public = render(Reply(text=f"Download once: {LINK}"))
    assert "3c" * 32 not in json.dumps(public.blocks)
    assert SECRET not in mrkdwn(f"App Home line {SECRET}")  # text made outside a Reply
    assert SECRET not in Overflow("f.txt", f"file {SECRET}", "t").content


def test_the_shell_renderer_redacts_and_keeps_the_private_link() -> None:
    shown = shell_render(raw_reply())
    assert SECRET not in shown and "7f" * 32 not in shown
    assert LINK in shown  # the private part, to the person at the terminal


def test_log_records_are_redacted_when_made(caplog) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("graphops.test")
    log.info("token %s and %r", SECRET, {"url": SIGNED})
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        log.exception("while doing %s", "something")
    for leak in LEAKS:
        assert leak not in caplog.text, leak
    record = caplog.records[-1]
    line = JsonFormatter().format(record)
    assert SECRET not in line and "failed with [REDACTED]" in line


def test_an_uncaught_exception_is_printed_redacted(tmp_path) -> None:
    script = (
        "from bot.logs import install_redaction; from core.redaction import remember\n"
        f"install_redaction(); remember({SECRET!r})\n"
        f"raise SystemError('boom ' + {SECRET!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "boom [REDACTED]" in done.stderr, done.stderr
    assert SECRET not in done.stderr
