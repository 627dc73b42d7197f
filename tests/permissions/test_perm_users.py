"""Roles per user and user group inside a binding, personal bindings, and which Slack
workspaces may act (permissions/policy.py: resolve_for, role_for, admit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlite_utils

from core.invocation import Invocation, Workspace
from core.refs import plain
from permissions.model import Binding
from permissions.policy import Target, admit, decide, role_for
from permissions.policy_file import (
    apply_diff,
    diff_policy,
    dump_policy,
    parse_policy,
    policy_from_store,
)
from permissions.roles import Role
from permissions.store import PermissionStore, normalize_binding_key

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
PRODUCTION = Target("console", "env-prod", "production", True)
STAGING = Target("console", "env-stg", "staging", False)


def _store(tmp_path: Path) -> PermissionStore:
    return PermissionStore(sqlite_utils.Database(tmp_path / "p.sqlite3"), admins=frozenset())


def _who(user: str, channel: str, groups: frozenset[str] = frozenset()) -> Invocation:
    return Invocation(user=user, channel=channel, text="", user_groups=groups)


def _readme_policy() -> str:
    section = README.split("### Roles per user", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readme_policy_file_does_what_the_readme_says(tmp_path: Path) -> None:
    store = _store(tmp_path)
    desired = parse_policy(_readme_policy())
    apply_diff(store, diff_policy(policy_from_store(store), desired))

    def role(user: str, channel: str, target: Target, groups: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
        policy = store.policy_for(channel, _who(user, channel, groups))
        decision = decide(policy, user, "restart", Role.VIEWER, False, target)
        return decision.role if decision.allowed else None

    assert role("U0LEAD", "C0PROD", PRODUCTION) is Role.ADMIN
    assert role("U0DBA", "C0PROD", PRODUCTION, frozenset({"S0ONCALL"})) is Role.ADMIN
    assert role("U0GUEST", "C0PROD", PRODUCTION) is Role.VIEWER  # the fallback
    assert role("U0GUEST", "C0DEV", STAGING) is Role.OPERATOR  # no users: everyone
    assert role("U0ALICE", "D0ALICEDM", STAGING) is Role.OPERATOR  # her personal binding
    assert role("U0BOB", "D0BOBDM", STAGING) is None  # nobody else's
    # and the file is what `access export` writes back
    assert diff_policy(parse_policy(dump_policy(policy_from_store(store))), desired).empty


def test_users_and_fallback_travel_through_export_and_import(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.grant("C0PROD", "console", "production", Role.ADMIN)
    store.set_users("C0PROD", "console", "production", ["S0ONCALL", "U0LEAD"], None)
    text = dump_policy(policy_from_store(store))
    assert 'users = ["S0ONCALL", "U0LEAD"]' in text and 'fallback = "none"' in text
    (tmp_path / "other").mkdir()
    other = _store(tmp_path / "other")
    diff = diff_policy(policy_from_store(other), parse_policy(text))
    assert any("users=S0ONCALL,U0LEAD fallback=none" in line for line in diff.lines)
    apply_diff(other, diff)
    [binding] = other.bindings("C0PROD")
    assert binding.users == ("S0ONCALL", "U0LEAD") and binding.fallback is None
    # changing who holds it is a `~` line, applied in place
    changed = text.replace('"U0LEAD"', '"U0NEWLEAD"').replace('"none"', '"viewer"')
    diff = diff_policy(policy_from_store(other), parse_policy(changed))
    assert [line[0] for line in diff.lines] == ["~"]
    apply_diff(other, diff)
    [binding] = other.bindings("C0PROD")
    assert binding.users == ("S0ONCALL", "U0NEWLEAD") and binding.fallback is Role.VIEWER


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('users = ["bob"]', "binding[0].users"),
        ('users = ["U0BOB"]\nfallback = "owner"', "unknown fallback 'owner'"),
        ('users = ["U0BOB"]\nchannel2 = "x"', "unknown key"),
    ],
)
def test_a_bad_users_entry_is_named(text: str, problem: str) -> None:
    head = '[[binding]]\nchannel = "C0PROD"\nprovider = "console"\n'
    body = f'{head}environment = "production"\nrole = "admin"\n{text}\n'
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_policy(body)


def test_the_rule_that_gives_a_role_is_said() -> None:
    binding = Binding("C0PROD", "console", "production", Role.ADMIN, users=("S0DBA", "U0LEAD"))
    assert role_for(binding, "U0LEAD") == (Role.ADMIN, "named in its users=")
    role, rule = role_for(binding, "U0CAROL", frozenset({"S0DBA"}))
    assert role is Role.ADMIN and plain(rule) == "a member of @S0DBA, named in its users="
    role, rule = role_for(binding, "U0GUEST")
    assert role is Role.VIEWER and plain(rule).startswith("not among its users @S0DBA, @U0LEAD")
    role, rule = role_for(binding, "U0CAROL", unresolved=frozenset({"S0DBA"}))
    assert role is Role.VIEWER and "could not be checked" in rule
    closed = Binding(
        "C0PROD", "console", "production", Role.ADMIN, users=("U0LEAD",), fallback=None
    )
    role, rule = role_for(closed, "U0GUEST")
    assert role is None and "fallback none" in rule
    everyone = Binding("C0DEV", "console", "staging", Role.OPERATOR)
    assert role_for(everyone, "U0ANY") == (Role.OPERATOR, "")


def test_a_withheld_binding_lets_a_wider_one_apply(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.grant("C0PROD", "console", "production", Role.ADMIN)
    store.set_users("C0PROD", "console", "production", ["U0LEAD"], None)
    store.grant("C0PROD", "console", "*", Role.VIEWER)
    guest = store.policy_for("C0PROD", _who("U0GUEST", "C0PROD"))
    decision = decide(guest, "U0GUEST", "show", Role.VIEWER, False, PRODUCTION)
    assert decision.allowed and decision.role is Role.VIEWER
    denied = decide(guest, "U0GUEST", "restart", Role.OPERATOR, False, PRODUCTION)
    assert not denied.allowed and "as viewer" in plain(denied.reason)


def test_admit_the_installing_workspace_its_organization_and_allowed_teams() -> None:
    home = Workspace("T0HOME", "E0ORG")
    assert admit(None, None, frozenset()).allowed  # the shell, schedules
    assert admit(Workspace("T0HOME"), Workspace("T0HOME"), frozenset()).allowed
    assert admit(Workspace("T0SIB", "E0ORG"), home, frozenset()).allowed
    assert admit(Workspace("", "E0ORG"), home, frozenset()).allowed
    refused = admit(Workspace("T0PARTNER"), home, frozenset())
    assert not refused.allowed and "T0PARTNER" in refused.reason
    assert "allowed_teams" in refused.reason
    assert admit(Workspace("T0PARTNER"), home, frozenset({"T0PARTNER"})).allowed
    assert admit(Workspace("T0P2", "E0PARTNER"), home, frozenset({"E0PARTNER"})).allowed
    assert not admit(Workspace("T0HOME"), None, frozenset()).allowed  # in doubt, deny
    assert not admit(Workspace(), home, frozenset()).allowed


def test_a_binding_key_is_a_channel_or_a_person() -> None:
    assert normalize_binding_key("C0PROD") == "C0PROD"
    assert normalize_binding_key("<#C0PROD|prod>") == "C0PROD"
    assert normalize_binding_key("U0ALICE") == "U0ALICE"
    assert normalize_binding_key("<@U0ALICE|alice>") == "U0ALICE"
    assert normalize_binding_key("@W0ALICE") == "W0ALICE"
    with pytest.raises(ValueError, match="neither a Slack channel id"):
        normalize_binding_key("alice")


def test_a_fallback_is_never_above_the_role_it_narrows(tmp_path: Path) -> None:
    """`users=` narrows who holds a role: a fallback above it would give everyone else
    more than the named users. Refused where it is set (store, policy file), lowered
    when the role is, and read as the role at most whatever the row says."""
    store = _store(tmp_path)
    store.grant("C0DEV", "console", "staging", Role.VIEWER)
    with pytest.raises(ValueError, match=r"the fallback \(admin\) would give everyone not named"):
        store.set_users("C0DEV", "console", "staging", ["U0ALICE"], Role.ADMIN)
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    store.set_users("C0DEV", "console", "staging", ["U0ALICE"], Role.OPERATOR)
    lowered = store.grant("C0DEV", "console", "staging", Role.VIEWER)
    assert lowered.fallback == Role.VIEWER  # lowered with the role
    with pytest.raises(ValueError, match="fallback"):
        parse_policy(
            '[[binding]]\nchannel = "C0DEV"\nprovider = "console"\nenvironment = "staging"\n'
            'role = "viewer"\nusers = ["U0ALICE"]\nfallback = "admin"\n'
        )
    # a row written before the check (an old store): decided as the role at most
    store.db.execute("UPDATE channel_bindings SET fallback = ?", [int(Role.ADMIN)])
    (binding,) = store.bindings("C0DEV")
    assert binding.fallback == Role.ADMIN
    assert role_for(binding, "U0BOB")[0] == Role.VIEWER
