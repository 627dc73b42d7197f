"""Logging that never prints a secret: every record passes through the redactor.

The redaction happens when a record is made (`install_redaction`: a log record
factory), not in a handler, so whatever prints it (stderr, a JSON line, pytest's
capture, a handler a library adds) gets the redacted message, exception text and
stack. Uncaught exceptions (`sys.excepthook`, `threading.excepthook`) are printed
redacted as well. The redactor is the process's one (core/redaction.py), which
knows every secret held at run time, including tokens received after start.

Two formats (``--log-format``): ``text`` (``TIME LEVEL logger: message``) and
``json`` (one object per line: ``time`` ISO 8601 UTC, ``level``, ``logger``,
``message``, plus the fields of a command line, below). The level comes from
``--log-level`` (DEBUG, INFO, WARNING, ERROR).

Every command run through the bot gets one line (logger ``graphops.command``):
``user``, ``channel``, ``transport``, ``verb`` (the registered verb, or
``unknown``/``unreadable``: never the words typed, which may hold a secret
typed by mistake), ``outcome`` (the reply's status: ok, info, pending, denied,
error) and ``ms`` (wall time of the command, integer milliseconds).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from core.redaction import redact
from core.refs import plain

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
COMMAND_LOGGER = "graphops.command"
COMMAND_FIELDS = ("user", "channel", "transport", "verb", "outcome", "ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """`record` with its message (arguments merged in), exception text and stack redacted."""
    try:
        message = record.getMessage()
    except Exception:  # bad arguments: say so rather than print them
        message = f"{record.msg!s} (its arguments could not be formatted)"
    record.msg = redact(plain(message))  # references as @U123 / #C123, never markers
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_installed = False


def install_redaction() -> None:
    """Redact every log record when it is made, and uncaught exceptions when printed
    (idempotent; bot.wiring.build_bot and `configure` call it)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(redacted_record)
    print_exception = sys.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print_exception(kind, value, tb)
            return
        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        text = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        name = args.thread.name if args.thread is not None else "?"
        sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in COMMAND_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


_configured = False


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send logs to stderr at `level` in format `fmt` (text or json); call once at start.

    ValueError names a level or format that does not exist.
    """
    global _configured
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    install_redaction()
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    _quiet_libraries()
    _configured = True


def setup_logging(level: str | None = None) -> None:
    """Make sure logs go somewhere, redacted (`install_redaction`).

    When `configure` was not called, first log to stderr as text at `level`
    (INFO by default); otherwise `level` None keeps the configured level.
    """
    install_redaction()
    root = logging.getLogger()
    if not _configured:
        root.setLevel((level or "INFO").upper())
        if not root.handlers:
            stream = logging.StreamHandler()
            stream.setFormatter(logging.Formatter(TEXT_FORMAT))
            root.addHandler(stream)
    elif level is not None:
        root.setLevel(level.upper())
    _quiet_libraries()


def _quiet_libraries() -> None:
    for noisy in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def command_verb(text: str, registry: Any, slash_command: str) -> str:
    """The registered verb a command line names; never a word that is not one."""
    from commands.grammar import GrammarError, parse

    try:
        parsed = parse(text, slash_command)
    except GrammarError:
        return "unreadable"
    verb = registry.get(parsed.verb)
    return verb.name if verb is not None else "unknown"


def log_command(
    invocation: Any, reply: Any, registry: Any, slash_command: str, started: float
) -> None:
    """The one line of a command run from `started` (time.perf_counter); see the module
    docstring. `invocation` is a commands Invocation, `reply` its Reply."""
    ms = round((time.perf_counter() - started) * 1000)
    fields = {
        "user": invocation.user,
        "channel": invocation.channel,
        "transport": invocation.transport,
        "verb": command_verb(invocation.text, registry, slash_command),
        "outcome": reply.status,
        "ms": ms,
    }
    logging.getLogger(COMMAND_LOGGER).info(
        "command %(verb)s by %(user)s in %(channel)s via %(transport)s: %(outcome)s in %(ms)d ms",
        fields,
        extra=fields,
    )
