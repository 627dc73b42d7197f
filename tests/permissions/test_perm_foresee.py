"""`foresee`: what a Slack ack may promise before any I/O. Its promise must hold: a
"likely" is never followed by a refusal of the role, and a "refused" never by an
allowed command, whatever the environment's id and the person's user groups turn out
to be (checked against `decide`, the one place that decides)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from permissions.model import Binding, ChannelPolicy
from permissions.policy import Target, decide, foresee, resolve_for
from permissions.roles import Role

ALICE = "U0ALICE"


def _binding(
    environment: str,
    role: Role,
    users: tuple[str, ...] = (),
    fallback: Role | None = Role.VIEWER,
    provider: str = "console",
) -> Binding:
    return Binding("C0OPS", provider, environment, role, users=users, fallback=fallback)


def test_a_viewer_channel_is_refused_an_operators_verb() -> None:
    bindings = [_binding("*", Role.VIEWER)]
    assert foresee(bindings, ALICE, Role.OPERATOR, {"console"}) == "refused"
    assert foresee(bindings, ALICE, Role.VIEWER, {"console"}) == "likely"


def test_nothing_bound_for_the_verbs_providers_is_refused() -> None:
    assert foresee([], ALICE, Role.VIEWER, {"console"}) == "refused"
    other = [_binding("*", Role.ADMIN, provider="graph")]
    assert foresee(other, ALICE, Role.VIEWER, {"console"}) == "refused"


def test_a_binding_held_by_others_gives_the_fallback_only() -> None:
    held = [_binding("*", Role.ADMIN, users=("U0BOB",), fallback=None)]
    assert foresee(held, ALICE, Role.VIEWER, {"console"}) == "refused"
    assert foresee(held, "U0BOB", Role.ADMIN, {"console"}) == "likely"
    viewers = [_binding("*", Role.ADMIN, users=("U0BOB",), fallback=Role.VIEWER)]
    assert foresee(viewers, ALICE, Role.VIEWER, {"console"}) == "likely"
    assert foresee(viewers, ALICE, Role.OPERATOR, {"console"}) == "refused"


def test_a_user_group_needs_io_so_the_ack_only_says_it_is_checking() -> None:
    group = [_binding("*", Role.OPERATOR, users=("S0ONCALL",), fallback=None)]
    assert foresee(group, ALICE, Role.OPERATOR, {"console"}) == "maybe"
    assert foresee(group, ALICE, Role.ADMIN, {"console"}) == "refused"


def test_an_environment_typed_is_matched_to_the_binding_named_so() -> None:
    bindings = [_binding("development", Role.ADMIN), _binding("Production", Role.VIEWER)]
    assert foresee(bindings, ALICE, Role.OPERATOR, {"console"}, "development") == "likely"
    # named as typed, any case: viewer there; `development` could still be production's
    # id as far as the ack can tell (equally specific, the highest role would win)
    assert foresee(bindings, ALICE, Role.OPERATOR, {"console"}, "production") == "maybe"
    assert foresee(bindings, ALICE, Role.ADMIN, {"console"}, "production") == "maybe"
    assert foresee(bindings[1:], ALICE, Role.OPERATOR, {"console"}, "production") == "refused"


def test_an_environment_bound_by_another_word_may_be_it_by_id() -> None:
    """`env=production` where only `env-7f3a` is bound: that may be production's id
    (a binding by id cannot be told from one by another name without I/O)."""
    bindings = [_binding("env-7f3a", Role.ADMIN)]
    assert foresee(bindings, ALICE, Role.OPERATOR, {"console"}, "production") == "maybe"


def test_a_wildcard_is_likely_unless_a_binding_by_id_may_lower_it() -> None:
    wild = [_binding("*", Role.ADMIN)]
    assert foresee(wild, ALICE, Role.OPERATOR, {"console"}, "staging") == "likely"
    lowered = [*wild, _binding("env-7f3a", Role.VIEWER)]
    assert foresee(lowered, ALICE, Role.OPERATOR, {"console"}, "staging") == "maybe"
    # named as typed: equally specific bindings by id can only add (highest role wins)
    named = [_binding("staging", Role.ADMIN), _binding("env-7f3a", Role.VIEWER)]
    assert foresee(named, ALICE, Role.OPERATOR, {"console"}, "staging") == "likely"


def test_a_binding_that_gives_the_person_nothing_does_not_hide_the_wildcard() -> None:
    """`resolve_for` withholds it, so `*` decides (as `decide` will)."""
    bindings = [_binding("*", Role.ADMIN), _binding("staging", Role.ADMIN, ("U0BOB",), None)]
    assert foresee(bindings, ALICE, Role.OPERATOR, {"console"}, "staging") == "likely"


ENV_WORDS = ["staging", "STAGING", "env-stg", "env-prd", "*"]
USERS = [(), (ALICE,), ("U0BOB",), ("S0ONCALL",), ("U0BOB", "S0ONCALL")]
binding_strategy = st.builds(
    _binding,
    environment=st.sampled_from(ENV_WORDS),
    role=st.sampled_from(list(Role)),
    users=st.sampled_from(USERS),
    fallback=st.sampled_from([None, *Role]),
    provider=st.sampled_from(["console", "legacy"]),
)


def _unique(bindings: list[Binding]) -> list[Binding]:
    """One binding per (provider, environment), as the store keeps them."""
    kept: dict[tuple[str, str], Binding] = {}
    for b in bindings:
        fallback = None if b.fallback is None else min(b.fallback, b.role)
        kept[(b.provider, b.environment)] = Binding(
            b.channel, b.provider, b.environment, b.role, users=b.users, fallback=fallback
        )
    return list(kept.values())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(binding_strategy, max_size=6),
    st.sampled_from(list(Role)),
    st.sampled_from([None, "staging", "Staging", "env-stg"]),
    st.sampled_from(["env-stg", "env-prd", "env-other"]),
    st.booleans(),
)
def test_the_ack_promises_what_decide_then_does(
    raw: list[Binding], role: Role, typed: str | None, env_id: str, in_group: bool
) -> None:
    bindings = _unique(raw)
    foresight = foresee(bindings, ALICE, role, {"console"}, typed)
    name = typed if typed not in (None, "env-stg") else "staging"
    target = Target("console", typed if typed == "env-stg" else env_id, name, production=False)
    groups = frozenset({"S0ONCALL"}) if in_group else frozenset()
    granted = ChannelPolicy("C0OPS", tuple(bindings), granted=tuple(bindings))
    decision = decide(resolve_for(granted, ALICE, groups), ALICE, "verb", role, False, target)
    if foresight == "refused":
        assert decision.outcome == "denied", (bindings, decision)
    if foresight == "likely" and typed is not None:
        # the environment was named: the promise holds whatever its id
        assert decision.outcome != "denied", (bindings, decision)
