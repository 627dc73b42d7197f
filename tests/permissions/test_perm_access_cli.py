"""`graphops access ...` / `graphops audit ...` through argparse and run()."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
import sqlite_utils

from bot.access_cli import add_parsers, parse_since, run
from permissions.audit import AuditLog
from permissions.roles import Role
from permissions.store import PermissionStore

ADMINS = frozenset({"U0BOTADMIN"})

POLICY = """
[[binding]]
channel = "C0DEV"
provider = "console"
environment = "staging"
role = "operator"
approvers = ["U0ALICE", "S0DBTEAM"]

[[binding]]
channel = "C0OPS"
provider = "console"
environment = "*"
role = "admin"

[[protected]]
provider = "console"
environment = "production"
protected = true

[[incident_channel]]
provider = "console"
environment = "*"
channel = "C0INCIDENT"
"""


def cli(db: sqlite_utils.Database, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="graphops")
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub)
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = run(args, db, ADMINS, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def snapshot(db: sqlite_utils.Database) -> list[list[dict]]:
    return [
        list(db.query(f"SELECT * FROM {t} ORDER BY 1, 2, 3"))
        for t in ("channel_bindings", "protected_environments", "incident_channels")
    ]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


def test_grant_list_revoke(db: sqlite_utils.Database) -> None:
    code, out, _ = cli(db, "access", "grant", "C0DEV", "console", "staging", "operator")
    assert code == 0 and "granted operator" in out
    cli(db, "access", "approvers", "C0DEV", "console", "staging", "U0ALICE", "S0DBTEAM")
    cli(db, "access", "protect", "console", "staging", "on")
    cli(db, "access", "incident-channel", "console", "*", "C0INC")
    code, out, _ = cli(db, "access", "list")
    assert code == 0
    assert "C0DEV" in out and "operator" in out and "U0ALICE S0DBTEAM" in out
    assert "staging" in out and "on" in out and "C0INC" in out
    code, out, _ = cli(db, "access", "revoke", "C0DEV", "console", "staging")
    assert code == 0
    assert PermissionStore(db).bindings() == []
    code, _, err = cli(db, "access", "revoke", "C0DEV", "console", "staging")
    assert code == 2 and err.startswith("error: ")


def test_protect_default_and_approvers_none(db: sqlite_utils.Database) -> None:
    store = PermissionStore(db)
    cli(db, "access", "protect", "console", "production", "off")
    assert [p.protected for p in store.protection_overrides()] == [False]
    cli(db, "access", "protect", "console", "production", "default")
    assert store.protection_overrides() == []
    cli(db, "access", "grant", "C0DEV", "console", "staging", "admin")
    cli(db, "access", "approvers", "C0DEV", "console", "staging", "U0ALICE")
    # no approvers given: shown, not cleared (issue 15, case 9); nothing audited
    code, out, _ = cli(db, "access", "approvers", "C0DEV", "console", "staging")
    assert code == 0 and "U0ALICE" in out
    assert store.bindings()[0].approvers == ("U0ALICE",)
    changes = [r for r in AuditLog(db).query() if r["verb"] == "access approvers"]
    assert len(changes) == 1  # the change above; showing is not a change
    code, _, err = cli(db, "access", "approvers", "C0DEV", "console", "staging", "none", "U0BOB")
    assert code == 2 and "cannot be given with ids" in err
    cli(db, "access", "approvers", "C0DEV", "console", "staging", "none")
    assert store.bindings()[0].approvers == ()
    code, _, err = cli(db, "access", "approvers", "C0DEV", "console", "nope")
    assert code == 2 and "no binding" in err
    cli(db, "access", "incident-channel", "console", "*", "C0INC")
    cli(db, "access", "incident-channel", "console", "*", "none")
    assert store.incident_channels() == []


def test_bad_input_is_one_line_error(db: sqlite_utils.Database) -> None:
    code, _out, err = cli(db, "access", "grant", "C0DEV", "console", "staging", "owner")
    assert code == 2
    assert "unknown role 'owner'" in err and "viewer, operator, admin" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = cli(db, "access", "approvers", "C0DEV", "console", "nope", "U0ALICE")
    assert code == 2 and "no binding" in err


def test_import_dry_run_shows_diff_and_changes_nothing(
    db: sqlite_utils.Database, policy_file: Path
) -> None:
    PermissionStore(db).grant("C0OLD", "console", "staging", Role.VIEWER)
    before = snapshot(db)
    code, out, _ = cli(db, "access", "import", str(policy_file), "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert "+ binding C0DEV console/staging role=operator approvers=U0ALICE,S0DBTEAM" in lines
    assert "+ binding C0OPS console/* role=admin" in lines
    assert "- binding C0OLD console/staging role=viewer" in lines
    assert "+ protected console/production on" in lines
    assert "+ incident_channel console/* C0INCIDENT" in lines
    assert "dry run" in out
    assert snapshot(db) == before


def test_import_applies_then_list_and_changed_diff(
    db: sqlite_utils.Database, policy_file: Path, tmp_path: Path
) -> None:
    PermissionStore(db).grant("C0OLD", "console", "staging", Role.VIEWER)
    code, out, _ = cli(db, "access", "import", str(policy_file))
    assert code == 0 and "applied 5 change(s)" in out
    store = PermissionStore(db)
    assert {(b.channel, b.environment, b.role) for b in store.bindings()} == {
        ("C0DEV", "staging", Role.OPERATOR),
        ("C0OPS", "*", Role.ADMIN),
    }
    assert store.bindings("C0DEV")[0].approvers == ("U0ALICE", "S0DBTEAM")
    assert store.incident_channel("console", "e1", "production") == "C0INCIDENT"
    code, out, _ = cli(db, "access", "list")
    assert "C0OPS" in out and "C0INCIDENT" in out and "C0OLD" not in out

    code, out, _ = cli(db, "access", "import", str(policy_file))
    assert code == 0 and "no changes" in out

    changed = tmp_path / "changed.toml"
    changed.write_text(
        POLICY.replace('role = "operator"', 'role = "admin"')
        .replace('["U0ALICE", "S0DBTEAM"]', '["U0BOB"]')
        .replace("protected = true", "protected = false")
    )
    code, out, _ = cli(db, "access", "import", str(changed))
    assert code == 0
    assert (
        "~ binding C0DEV console/staging role operator -> admin; "
        "approvers [U0ALICE, S0DBTEAM] -> [U0BOB]"
    ) in out
    assert "~ protected console/production on -> off" in out
    assert PermissionStore(db).bindings("C0DEV")[0].approvers == ("U0BOB",)


def test_export_round_trips(db: sqlite_utils.Database, policy_file: Path, tmp_path: Path) -> None:
    cli(db, "access", "import", str(policy_file))
    before = snapshot(db)
    code, stdout_text, _ = cli(db, "access", "export")
    assert code == 0 and "[[binding]]" in stdout_text
    exported = tmp_path / "exported.toml"
    code, _, _ = cli(db, "access", "export", str(exported))
    assert exported.read_text() == stdout_text
    code, _, err = cli(db, "access", "export", str(exported))  # as backup: never overwrites
    assert code == 2 and "already exists; give a new file name" in err
    assert exported.read_text() == stdout_text

    fresh = sqlite_utils.Database(tmp_path / "fresh.db")
    code, out, _ = cli(fresh, "access", "import", str(exported))
    assert code == 0
    assert [
        [{k: v for k, v in r.items() if k not in ("granted_by", "granted_at")} for r in t]
        for t in snapshot(fresh)
    ] == [
        [{k: v for k, v in r.items() if k not in ("granted_by", "granted_at")} for r in t]
        for t in before
    ]
    code, out, _ = cli(db, "access", "import", str(exported), "--dry-run")
    assert "no changes" in out
    fresh.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            POLICY + '\n[[binding]]\nchannel = "C0X"\nprovider = "console"\n'
            'environment = "dev"\nrole = "owner"\n',
            "binding[2].role: unknown role 'owner'",
        ),
        (
            POLICY.replace('role = "admin"', 'role = "admin"\ncolour = "red"'),
            "binding[1].colour: unknown key",
        ),
        (
            POLICY.replace('["U0ALICE", "S0DBTEAM"]', '["alice"]'),
            "binding[0].approvers: 'alice' is not a Slack user id",
        ),
        (POLICY + "\n[[bindings]]\n", "bindings: unknown key"),
        (POLICY.replace('channel = "C0OPS"\n', ""), "binding[1].channel is required"),
        (
            POLICY + POLICY.split("[[binding]]")[1].join(["[[binding]]", ""]),
            "binding[2]: duplicate of binding[0]",
        ),
        ("[[binding]\n", "not valid TOML"),
        (
            POLICY.replace("protected = true", 'protected = "maybe"'),
            "protected[0].protected takes true or false, not 'maybe'",
        ),
    ],
)
def test_bad_file_clear_error_nothing_applied(
    db: sqlite_utils.Database, tmp_path: Path, text: str, expected: str
) -> None:
    PermissionStore(db).grant("C0OLD", "console", "staging", Role.VIEWER)
    before = snapshot(db)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code, _out, err = cli(db, "access", "import", str(bad))
    assert code == 2
    assert expected in err, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert snapshot(db) == before


def test_missing_file_error(db: sqlite_utils.Database, tmp_path: Path) -> None:
    code, _, err = cli(db, "access", "import", str(tmp_path / "nope.toml"))
    assert code == 2 and "cannot read" in err


def test_import_is_all_or_nothing(
    db: sqlite_utils.Database, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    PermissionStore(db).grant("C0OLD", "console", "staging", Role.VIEWER)
    before = snapshot(db)

    def boom(self: PermissionStore, *args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(PermissionStore, "set_incident_channel", boom)
    code, _, err = cli(db, "access", "import", str(policy_file))
    assert code == 2 and "disk on fire" in err
    assert snapshot(db) == before


def test_audit_command_table_and_json(db: sqlite_utils.Database) -> None:
    audit = AuditLog(db)
    audit.record("command", user="U0A", database="orders", verb="pause", outcome="ok")
    audit.record("decision", user="U0B", database="users", verb="terminate", outcome="denied")
    code, out, _ = cli(db, "audit", "--user", "U0A")
    assert code == 0 and "pause" in out and "terminate" not in out
    code, out, _ = cli(db, "audit", "--json", "--db", "users", "--since", "1h")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["verb"] for r in rows] == ["terminate"]
    code, out, _ = cli(db, "audit", "--kind", "api_call")
    assert code == 0 and "no audit rows" in out
    code, _, err = cli(db, "audit", "--since", "yesterday-ish")
    assert code == 2 and "--since" in err


def test_parse_since() -> None:
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("1d", now=100_000.0) == 100_000.0 - 86400
    assert parse_since("30m", now=5000.0) == 5000.0 - 1800
    assert parse_since("1970-01-01T01:00:00") == 3600.0
    assert parse_since("1970-01-01T01:00:00+01:00") == 0.0


def test_policy_changes_are_audited_dry_runs_and_reads_are_not(
    db: sqlite_utils.Database, policy_file: Path
) -> None:
    from permissions.audit import AuditLog

    assert cli(db, "access", "grant", "C0DEV", "console", "staging", "operator")[0] == 0
    assert cli(db, "access", "import", str(policy_file), "--dry-run")[0] == 0
    assert cli(db, "access", "list")[0] == 0
    rows = AuditLog(db).query(kind="command")
    assert [r["verb"] for r in rows] == ["access grant"]
    assert rows[0]["user"].startswith("cli:") and rows[0]["outcome"] == "changed"
    assert "C0DEV" in rows[0]["detail"]["change"]


def test_grant_names_who_holds_the_role_and_list_shows_it(db: sqlite_utils.Database) -> None:
    code, out, err = cli(
        db, "access", "grant", "C0PROD", "console", "production", "admin",
        "--users", "S0ONCALL,U0LEAD", "--fallback", "none",
    )  # fmt: skip
    assert code == 0, err
    assert "held by S0ONCALL U0LEAD, others none" in out
    code, out, _ = cli(db, "access", "grant", "U0ALICE", "console", "staging", "operator")
    assert code == 0 and "to U0ALICE" in out
    code, out, _ = cli(db, "access", "list")
    assert "USERS" in out and "S0ONCALL U0LEAD" in out and "none" in out
    code, _, err = cli(
        db, "access", "grant", "C0PROD", "console", "production", "admin", "--fallback", "x"
    )
    assert code == 2 and "unknown fallback 'x'" in err
    [binding] = PermissionStore(db).bindings("C0PROD")
    assert binding.fallback is None  # the refused change changed nothing


def _cli_with_providers(db: sqlite_utils.Database, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="graphops")
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub)
    out, err = io.StringIO(), io.StringIO()
    args = parser.parse_args(list(argv))
    code = run(args, db, ADMINS, out=out, err=err, providers=frozenset({"console", "legacy"}))
    return code, out.getvalue(), err.getvalue()


def test_a_provider_not_in_the_config_is_refused_and_nothing_changes(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """A typo (`consle`) bound nothing in a grant, and in an import dropped every real
    binding: both refused, naming the configured providers, like the chat `grant`."""
    assert (
        _cli_with_providers(db, "access", "grant", "C0DEV", "console", "staging", "viewer")[0] == 0
    )
    before = snapshot(db)
    code, _, err = _cli_with_providers(db, "access", "grant", "C0DEV", "consle", "staging", "admin")
    assert code == 2
    assert "no provider called 'consle' in the config (providers: console, legacy)" in err
    typo = tmp_path / "typo.toml"
    typo.write_text(POLICY.replace('provider = "console"', 'provider = "consle"', 1))
    for dry in ((), ("--dry-run",)):
        code, out, err = _cli_with_providers(db, "access", "import", str(typo), *dry)
        assert code == 2 and "names no provider called 'consle'" in err, err
        assert out == ""
    assert snapshot(db) == before


def test_a_fallback_above_the_role_is_refused_atomically(db: sqlite_utils.Database) -> None:
    code, _, err = cli(
        db, "access", "grant", "C0DEV", "console", "staging", "viewer",
        "--users", "U0ALICE", "--fallback", "admin",
    )  # fmt: skip
    assert code == 2 and "the fallback (admin) would give everyone not named" in err
    assert snapshot(db)[0] == []  # not even the viewer grant


def test_protect_and_incident_channel_refuse_a_provider_not_configured(
    db: sqlite_utils.Database,
) -> None:
    cli(db, "access", "list")  # the tables exist
    before = snapshot(db)
    for argv in (
        ("access", "protect", "consol", "staging", "on"),
        ("access", "incident-channel", "consol", "*", "C0INCIDENT"),
    ):
        code, _, err = _cli_with_providers(db, *argv)
        assert code == 2 and "no provider called 'consol'" in err, argv
    assert snapshot(db) == before


def test_a_fallback_without_users_is_refused(db: sqlite_utils.Database) -> None:
    code, _, err = cli(db, "access", "grant", "C0DEV", "console", "staging", "viewer",
                       "--fallback", "admin")  # fmt: skip
    assert code == 2 and "without --users the whole channel holds the role" in err
    assert snapshot(db)[0] == []


def test_an_import_with_no_binding_is_refused_unless_meant(
    db: sqlite_utils.Database, policy_file: Path, tmp_path: Path
) -> None:
    """A 0-byte (or binding-less) file would remove every binding: every channel denied."""
    cli(db, "access", "import", str(policy_file))
    before = snapshot(db)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, out, err = cli(db, "access", "import", str(empty))
    assert code == 2 and "would remove all 2 binding(s)" in err and out == ""
    assert snapshot(db) == before
    code, _, _ = cli(db, "access", "import", str(empty), "--allow-empty")
    assert code == 0 and snapshot(db)[0] == []
