"""Property: decide() equals a simple model after any sequence of grants/revokes.

In particular a grant in one channel never gives anything in another channel.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from permissions.policy import Target, decide
from permissions.roles import Role
from permissions.store import PermissionStore

CHANNELS = ["C0A", "C0B", "C0C"]
PROVIDERS = ["console", "legacy"]
ENVIRONMENTS = ["staging", "env-stg", "production", "env-prd", "*"]
TARGETS = [Target(p, "env-stg", "staging", production=False) for p in PROVIDERS] + [
    Target(p, "env-prd", "production", production=True) for p in PROVIDERS
]

operation = st.tuples(
    st.sampled_from(["grant", "revoke"]),
    st.sampled_from(CHANNELS),
    st.sampled_from(PROVIDERS),
    st.sampled_from(ENVIRONMENTS),
    st.sampled_from(list(Role)),
)


def model_role(
    model: dict[tuple[str, str, str], Role], channel: str, target: Target
) -> Role | None:
    exact = [
        role
        for (c, p, env), role in model.items()
        if c == channel
        and p == target.provider
        and env in (target.environment_id, target.environment_name)
    ]
    if exact:
        return max(exact)
    return model.get((channel, target.provider, "*"))


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=12))
def test_decide_matches_model(ops: list[tuple[str, str, str, str, Role]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite_utils.Database(Path(tmp) / "p.db")
        try:
            store = PermissionStore(db, admins=frozenset({"U0ADMIN"}))
            model: dict[tuple[str, str, str], Role] = {}
            for kind, channel, provider, env, role in ops:
                if kind == "grant":
                    store.grant(channel, provider, env, role)
                    model[(channel, provider, env)] = role
                else:
                    existed = store.revoke(channel, provider, env)
                    assert existed == ((channel, provider, env) in model)
                    model.pop((channel, provider, env), None)
            for channel in CHANNELS:
                policy = store.policy_for(channel)
                for target in TARGETS:
                    expected = model_role(model, channel, target)
                    for required in Role:
                        for user in ("U0ADMIN", "U0X"):
                            decision = decide(policy, user, "verb", required, False, target)
                            if expected is not None and expected >= required:
                                assert decision.outcome == "allowed", decision.reason
                                assert decision.role is expected
                            else:
                                assert decision.outcome == "denied", (channel, target, model)
        finally:
            db.close()
