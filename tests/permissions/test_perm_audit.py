"""AuditLog and redaction: no secret ever reaches a row."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlite_utils

from core.redaction import Redactor, redact_shapes
from permissions.audit import AuditLog

SENTINELS = ["s3cr3t-client-SENTINEL", "apikey-SENTINEL-123", "pw-SENTINEL!"]
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc-DEF_ghi"
XOXB = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
XAPP = "xapp-1-A0123-456789-abcdef0123"
UNKNOWN_SECRETS = ["hunter2-unlisted", "tok-unlisted-999", "cs-unlisted-777"]


def _all_text(db: sqlite_utils.Database) -> str:
    return json.dumps(list(db.query("SELECT * FROM audit")))


def test_audit_rows_never_contain_secrets(db: sqlite_utils.Database, clock: Any) -> None:
    audit = AuditLog(db, redactor=Redactor(SENTINELS), clock=clock)
    audit.record(
        "command",
        user="U0ALICE",
        channel="C0DEV",
        verb=f"import url=https://x/?api_key={SENTINELS[1]}",
        outcome=f"failed: Authorization: Bearer {BEARER}",
        database=f"db {SENTINELS[0]}",
        detail={
            "text": f"/gdb connect password={UNKNOWN_SECRETS[0]} and {SENTINELS[2]}",
            "headers": {"Authorization": f"Bearer {BEARER}", "X-Api-Key": SENTINELS[1]},
            "nested": [{"client_secret": UNKNOWN_SECRETS[2]}, f"slack {XOXB} / {XAPP}"],
            "body": json.dumps({"token": UNKNOWN_SECRETS[1], "token_type": "bearer"}),
            "password": 12345678,
            SENTINELS[0]: "secret used as a key",
        },
    )
    audit.api_call(
        "console",
        "POST",
        f"/oauth/token?client_secret={UNKNOWN_SECRETS[2]}",
        200,
        12.3,
        detail={"response": f'{{"access_token": "{BEARER}", "expires_in": 3600}}'},
    )
    audit.record("operation", detail={"log": f"password: '{UNKNOWN_SECRETS[0]}' ok"})
    text = _all_text(db)
    for secret in [*SENTINELS, *UNKNOWN_SECRETS, BEARER, XOXB, XAPP, "12345678"]:
        assert secret not in text, secret
    assert "[REDACTED]" in text
    # non-secret context survives
    assert "U0ALICE" in text and "token_type" in text and "expires_in" in text
    for row in audit.query():
        if row["detail"] is not None:
            assert isinstance(row["detail"], dict)


def test_shapes_are_redacted_with_the_process_redactor(db: sqlite_utils.Database) -> None:
    audit = AuditLog(db)
    audit.record("command", verb=f"token={UNKNOWN_SECRETS[1]} {XOXB}")
    text = _all_text(db)
    assert UNKNOWN_SECRETS[1] not in text
    assert XOXB not in text


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        (f"Authorization: Bearer {BEARER}", BEARER),
        (f"bearer {BEARER}", BEARER),
        (f"sent {XOXB} now", XOXB),
        ("xoxp-11-22-33abc", "xoxp-11-22-33abc"),
        (f"{XAPP}", XAPP),
        ("api_key=abcd1234 next", "abcd1234"),
        ("api-key: abcd1234", "abcd1234"),
        ('{"password": "p@ss word"}', "p@ss word"),
        ("{'client_secret': 'cs1234'}", "cs1234"),
        ("DB_PASSWORD=hunter22", "hunter22"),
        ("https://h/x?access_token=tk999&a=1", "tk999"),
    ],
)
def test_builtin_patterns(raw: str, secret: str) -> None:
    redacted = redact_shapes(raw)
    assert secret not in redacted
    assert "[REDACTED]" in redacted


def test_builtin_keeps_harmless_text() -> None:
    text = "token_type=bearer; tokens left: 3; terminate orders-db"
    assert redact_shapes(text) == text


def test_known_values_in_every_form() -> None:
    redact = Redactor(["abc", "longsecretvalue", 'quo"te-secret']).redact
    assert redact("x abc longsecretvalue y") == "x abc [REDACTED] y"  # short: kept
    assert "quo" not in redact(json.dumps({"v": 'quo"te-secret'}))
    assert redact("u=longsecretvalue") == "u=[REDACTED]"
    assert Redactor().redact("plain") == "plain"


def test_query_filters_and_limit(db: sqlite_utils.Database, clock: Any) -> None:
    clock.now = 1_700_000_000.0
    audit = AuditLog(db, clock=clock)
    audit.record("command", user="U0A", database="orders", verb="pause")
    clock.advance(3600)
    audit.record("decision", user="U0B", database="orders", outcome="denied")
    clock.advance(3600)
    audit.record("command", user="U0A", database="users", verb="resume")
    assert [r["verb"] for r in audit.query(user="U0A")] == ["pause", "resume"]
    assert [r["user"] for r in audit.query(database="orders")] == ["U0A", "U0B"]
    assert [r["kind"] for r in audit.query(kind="decision")] == ["decision"]
    assert len(audit.query(since=clock.now - 3601)) == 2
    assert [r["verb"] for r in audit.query(limit=1)] == ["resume"]
    rows = audit.query()
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[0]["iso"].startswith("2023-11-14T22:13:20")
    lines = audit.export_jsonl(rows).splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2])["verb"] == "resume"
    with pytest.raises(ValueError):
        audit.record("nonsense")


def test_api_call_row(db: sqlite_utils.Database) -> None:
    audit = AuditLog(db)
    audit.api_call("console", "get", "/environments", 200, 41.26, user="U0A")
    [row] = audit.query(kind="api_call")
    assert row["verb"] == "GET /environments"
    assert row["outcome"] == "200"
    assert row["detail"] == {"method": "GET", "path": "/environments", "status": 200, "ms": 41.3}


def test_rows_are_redacted_again_when_read(db: sqlite_utils.Database) -> None:
    """A row written before a secret was known (or by an older version) is shown redacted
    by `query`, hence by `graphops audit`."""
    AuditLog(db)  # the table
    signed = "https://b.s3.amazonaws.com/g.zip?X-Amz-Expires=60&X-Amz-Signature=" + "ab" * 32
    db.execute(
        "INSERT INTO audit (ts, iso, kind, verb, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
        [
            1.0,
            "1970-01-01T00:00:01.000+00:00",
            "decision",
            f"import {signed}",
            "old-row-secret-value-77",
            json.dumps({"plan": f"import {signed}", "password": "whatever-it-was"}),
        ],
    )
    [row] = AuditLog(db, redactor=Redactor(["old-row-secret-value-77"])).query()
    shown = json.dumps(row)
    for secret in ("ab" * 32, "old-row-secret-value-77", "whatever-it-was"):
        assert secret not in shown, secret
    assert "b.s3.amazonaws.com/g.zip" in shown


def test_audit_rows_and_log_lines_show_references_not_markers(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A reason naming a channel reads `#C0DEV` in the audit and the log (core.refs.plain),
    not the private-use markers replies carry."""
    import logging

    import sqlite_utils

    from bot.logs import install_redaction
    from core.refs import OPEN, ChannelRef, UserRef
    from permissions.audit import AuditLog

    audit = AuditLog(sqlite_utils.Database(tmp_path / "a.sqlite3"))
    reason = f"{ChannelRef('C0DEV')} is bound to graph as admin; asked by {UserRef('U0BOB')}"
    audit.record("decision", user="U0BOB", channel="C0DEV", outcome=reason, detail={"r": reason})
    (row,) = audit.query(kind="decision")
    assert row["outcome"] == "#C0DEV is bound to graph as admin; asked by @U0BOB"
    assert row["detail"]["r"] == row["outcome"]
    raw = audit.db.execute("SELECT outcome, detail FROM audit").fetchone()
    assert OPEN not in raw[0] and OPEN not in raw[1]
    install_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("graphops.test").info("refused: %s", reason)
    assert "refused: #C0DEV is bound" in caplog.text and OPEN not in caplog.text
