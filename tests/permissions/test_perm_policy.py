"""decide() and may_approve(): channel bindings, specificity, protection, approvers."""

from __future__ import annotations

import pytest

from core.refs import plain
from permissions.model import Binding, ChannelPolicy
from permissions.policy import Target, decide, may_approve
from permissions.roles import Role
from permissions.store import PermissionStore

STAGING = Target("console", "env-stg-1", "staging", production=False)
PRODUCTION = Target("console", "env-prd-1", "production", production=True)


def test_default_deny(store: PermissionStore) -> None:
    decision = decide(store.policy_for("C0DEV"), "U1", "list", Role.VIEWER, False, STAGING)
    assert decision.outcome == "denied"
    assert plain(decision.reason) == (
        "#C0DEV is not bound to environment staging of console; "
        "a bot admin can grant it with `grant`"
    )
    assert decision.role is None


def test_not_permitted_channel(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.ADMIN, by="U0BOTADMIN")
    assert decide(store.policy_for("C0DEV"), "U1", "list", Role.VIEWER, False, STAGING).allowed
    other = decide(store.policy_for("C0OTHER"), "U1", "list", Role.VIEWER, False, STAGING)
    assert other.outcome == "denied"


def test_bot_admin_gets_nothing_in_unbound_channel(store: PermissionStore) -> None:
    decision = decide(store.policy_for("C0DEV"), "U0BOTADMIN", "list", Role.VIEWER, False, STAGING)
    assert decision.outcome == "denied"


def test_other_provider_does_not_match(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.ADMIN)
    legacy = Target("legacy", "env-stg-1", "staging", production=False)
    assert decide(store.policy_for("C0DEV"), "U1", "list", Role.VIEWER, False, legacy).outcome == (
        "denied"
    )


@pytest.mark.parametrize(
    ("bound", "required", "outcome"),
    [
        (Role.VIEWER, Role.VIEWER, "allowed"),
        (Role.VIEWER, Role.OPERATOR, "denied"),
        (Role.VIEWER, Role.ADMIN, "denied"),
        (Role.OPERATOR, Role.VIEWER, "allowed"),
        (Role.OPERATOR, Role.OPERATOR, "allowed"),
        (Role.OPERATOR, Role.ADMIN, "denied"),
        (Role.ADMIN, Role.ADMIN, "allowed"),
    ],
)
def test_role_order_in_decisions(
    store: PermissionStore, bound: Role, required: Role, outcome: str
) -> None:
    store.grant("C0DEV", "console", "staging", bound)
    decision = decide(store.policy_for("C0DEV"), "U1", "pause", required, False, STAGING)
    assert decision.outcome == outcome
    assert decision.role is bound


def test_insufficient_role_reason(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    decision = decide(store.policy_for("C0DEV"), "U1", "terminate", Role.ADMIN, True, STAGING)
    assert decision.outcome == "denied"
    assert plain(decision.reason) == (
        "#C0DEV is bound to environment staging as operator; terminate needs admin"
    )


def test_allowed_reason(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    decision = decide(store.policy_for("C0DEV"), "U1", "pause", Role.OPERATOR, False, STAGING)
    assert decision.outcome == "allowed"
    assert plain(decision.reason) == "#C0DEV is bound to staging as operator"


def test_binding_by_id_and_case_insensitive_name(store: PermissionStore) -> None:
    store.grant("C0A", "console", "env-stg-1", Role.OPERATOR)
    store.grant("C0B", "console", "STAGING", Role.OPERATOR)
    store.grant("C0C", "console", "ENV-STG-1", Role.OPERATOR)  # ids are exact
    assert decide(store.policy_for("C0A"), "U1", "v", Role.OPERATOR, False, STAGING).allowed
    assert decide(store.policy_for("C0B"), "U1", "v", Role.OPERATOR, False, STAGING).allowed
    assert not decide(store.policy_for("C0C"), "U1", "v", Role.VIEWER, False, STAGING).allowed


def test_wildcard_matches_all_environments_of_provider(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.VIEWER)
    for target in (STAGING, PRODUCTION):
        decision = decide(store.policy_for("C0DEV"), "U1", "list", Role.VIEWER, False, target)
        assert decision.allowed, decision.reason


def test_exact_binding_beats_wildcard_both_ways(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.ADMIN)
    store.grant("C0DEV", "console", "production", Role.VIEWER)
    policy = store.policy_for("C0DEV")
    prod = decide(policy, "U1", "pause", Role.OPERATOR, False, PRODUCTION)
    assert prod.outcome == "denied"
    assert prod.role is Role.VIEWER
    stg = decide(policy, "U1", "pause", Role.OPERATOR, False, STAGING)
    assert stg.outcome == "allowed"
    assert stg.role is Role.ADMIN


def test_highest_role_among_equally_specific(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.VIEWER)
    store.grant("C0DEV", "console", "env-stg-1", Role.OPERATOR)
    decision = decide(store.policy_for("C0DEV"), "U1", "pause", Role.OPERATOR, False, STAGING)
    assert decision.outcome == "allowed"
    assert decision.role is Role.OPERATOR


def test_revoke_removes_access(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    assert store.revoke("C0DEV", "console", "Staging") is True
    assert store.revoke("C0DEV", "console", "staging") is False
    decision = decide(store.policy_for("C0DEV"), "U1", "list", Role.VIEWER, False, STAGING)
    assert decision.outcome == "denied"


def test_destructive_needs_approval(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    store.set_approvers("C0DEV", "console", "staging", ["U0ALICE", "S0DBTEAM"])
    decision = decide(store.policy_for("C0DEV"), "U1", "terminate", Role.OPERATOR, True, STAGING)
    assert decision.outcome == "needs_approval"
    assert decision.approvers == ("U0ALICE", "S0DBTEAM")
    assert decision.protected is False
    assert "@U0ALICE" in plain(decision.reason)
    assert "@S0DBTEAM" in plain(decision.reason)
    assert "protected" not in decision.reason


def test_destructive_without_role_is_denied_not_approval(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.VIEWER)
    decision = decide(store.policy_for("C0DEV"), "U1", "terminate", Role.ADMIN, True, STAGING)
    assert decision.outcome == "denied"


def test_production_is_protected_by_default(store: PermissionStore) -> None:
    store.grant("C0OPS", "console", "*", Role.ADMIN)
    policy = store.policy_for("C0OPS")
    prod = decide(policy, "U1", "terminate", Role.ADMIN, True, PRODUCTION)
    assert prod.outcome == "needs_approval"
    assert prod.protected is True
    assert "(protected environment: someone other than the requester must approve)" in prod.reason
    assert decide(policy, "U1", "terminate", Role.ADMIN, True, STAGING).protected is False


def test_protection_override_both_ways(store: PermissionStore) -> None:
    store.grant("C0OPS", "console", "*", Role.ADMIN)
    store.set_protected("console", "production", False)
    store.set_protected("console", "env-stg-1", True)
    policy = store.policy_for("C0OPS")
    assert decide(policy, "U1", "terminate", Role.ADMIN, True, PRODUCTION).protected is False
    assert decide(policy, "U1", "terminate", Role.ADMIN, True, STAGING).protected is True
    store.set_protected("console", "production", None)
    policy = store.policy_for("C0OPS")
    assert decide(policy, "U1", "terminate", Role.ADMIN, True, PRODUCTION).protected is True
    assert store.protection_overrides()[0].environment == "env-stg-1"


def test_exception_inside_decide_denies() -> None:
    broken = ChannelPolicy(
        channel="C0DEV",
        bindings=(Binding("C0DEV", "console", None, Role.ADMIN),),  # type: ignore[arg-type]
    )
    decision = decide(broken, "U1", "list", Role.VIEWER, False, STAGING)
    assert decision.outcome == "denied"
    assert decision.reason.startswith("could not decide (")
    assert decision.reason.endswith("); denied to be safe")
    assert "Error" not in decision.reason  # the exception is logged, not shown
    approval = may_approve(broken, "U2", frozenset(), "U1", "x", Role.VIEWER, STAGING)
    assert approval.outcome == "denied"


# may_approve ---------------------------------------------------------------


def _approve(
    store: PermissionStore,
    approver: str,
    target: Target,
    groups: set[str] | None = None,
    requester: str = "U0REQ",
) -> str:
    decision = may_approve(
        store.policy_for("C0DEV"),
        approver,
        frozenset(groups or ()),
        requester,
        "terminate",
        Role.OPERATOR,
        target,
    )
    assert decision.outcome in ("allowed", "denied")
    return decision.outcome


def test_may_approve_explicit_approvers_and_groups(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.OPERATOR)
    store.set_approvers("C0DEV", "console", "*", ["U0ALICE", "S0DBTEAM"])
    assert _approve(store, "U0ALICE", STAGING) == "allowed"
    assert _approve(store, "U0BOB", STAGING, groups={"S0DBTEAM"}) == "allowed"
    assert _approve(store, "U0BOB", STAGING, groups={"S0OTHER"}) == "denied"
    assert _approve(store, "U0BOB", STAGING) == "denied"
    decision = may_approve(
        store.policy_for("C0DEV"),
        "U0BOB",
        frozenset(),
        "U0REQ",
        "terminate",
        Role.OPERATOR,
        STAGING,
    )
    assert "@U0ALICE" in plain(decision.reason)


def test_may_approve_bot_admin(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.OPERATOR)
    store.set_approvers("C0DEV", "console", "*", ["U0ALICE"])
    assert _approve(store, "U0BOTADMIN", STAGING) == "allowed"
    assert _approve(store, "U0BOTADMIN", PRODUCTION) == "allowed"
    # ... but never their own request in a protected environment
    assert _approve(store, "U0BOTADMIN", PRODUCTION, requester="U0BOTADMIN") == "denied"


def test_self_approval_refused_when_protected_allowed_when_not(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "*", Role.OPERATOR)
    store.set_approvers("C0DEV", "console", "*", ["U0ALICE"])
    decision = may_approve(
        store.policy_for("C0DEV"),
        "U0ALICE",
        frozenset(),
        "U0ALICE",
        "terminate",
        Role.OPERATOR,
        PRODUCTION,
    )
    assert decision.outcome == "denied"
    assert decision.reason == (
        "in a protected environment the requester cannot approve their own request"
    )
    assert _approve(store, "U0ALICE", STAGING, requester="U0ALICE") == "allowed"
    store.set_protected("console", "production", False)
    assert _approve(store, "U0ALICE", PRODUCTION, requester="U0ALICE") == "allowed"


def test_no_approvers_admin_binding_approves_by_default(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.ADMIN)
    assert _approve(store, "U0ANYONE", STAGING) == "allowed"


def test_no_approvers_operator_binding_denies(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.OPERATOR)
    decision = may_approve(
        store.policy_for("C0DEV"), "U0X", frozenset(), "U0REQ", "terminate", Role.OPERATOR, STAGING
    )
    assert decision.outcome == "denied"
    assert "no approvers are set" in decision.reason
    assert "`approvers`" in decision.reason


def test_may_approve_rechecks_binding_at_click_time(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.ADMIN)
    assert _approve(store, "U0BOTADMIN", STAGING) == "allowed"
    store.revoke("C0DEV", "console", "staging")
    assert _approve(store, "U0BOTADMIN", STAGING) == "denied"
    store.grant("C0DEV", "console", "staging", Role.VIEWER)  # downgraded
    assert _approve(store, "U0BOTADMIN", STAGING) == "denied"


def test_incident_channel_exact_beats_wildcard(store: PermissionStore) -> None:
    assert store.incident_channel("console", "env-prd-1", "production") is None
    store.set_incident_channel("console", "*", "C0ALL")
    store.set_incident_channel("console", "Production", "C0PROD")
    assert store.incident_channel("console", "env-prd-1", "production") == "C0PROD"
    assert store.incident_channel("console", "env-stg-1", "staging") == "C0ALL"
    assert store.incident_channel("legacy", "x", "staging") is None
    store.set_incident_channel("console", "production", None)
    assert store.incident_channel("console", "env-prd-1", "production") == "C0ALL"


def test_grant_is_upsert_and_keeps_approvers(store: PermissionStore) -> None:
    store.grant("C0DEV", "console", "staging", Role.VIEWER)
    store.set_approvers("C0DEV", "console", "staging", ["<@U0ALICE>"])
    store.grant("C0DEV", "console", "Staging", Role.ADMIN)
    [binding] = store.bindings("C0DEV")
    assert binding.role is Role.ADMIN
    assert binding.approvers == ("U0ALICE",)


def test_store_rejects_bad_ids(store: PermissionStore) -> None:
    with pytest.raises(ValueError):
        store.grant("dev-channel", "console", "staging", Role.VIEWER)
    store.grant("C0DEV", "console", "staging", Role.VIEWER)
    with pytest.raises(ValueError):
        store.set_approvers("C0DEV", "console", "staging", ["alice"])
    with pytest.raises(KeyError):
        store.set_approvers("C0DEV", "console", "prod", ["U0ALICE"])
