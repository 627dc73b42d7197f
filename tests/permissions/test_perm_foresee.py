"""`foresee`: what a Slack ack may promise before any I/O. Its promise must hold: a
"likely" is never followed by a refusal of the role, and a "refused" never by an
allowed command, whatever the environment's id and the person's user groups turn out
to be (checked against `decide`, the one place that decides)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from permissions.model import Binding, ChannelPolicy, environment_matches
from permissions.policy import Foresight, Need, Place, Target, decide, foresee, resolve_for
from permissions.roles import Role

ALICE = "U0ALICE"


def _foresee(
    bindings: list[Binding],
    user: str,
    role: Role,
    env: str | None = None,
    *,
    most: Role | None = None,
    source: Role | None = None,
    homes: list[Place] | None = None,
) -> Foresight:
    """As the Slack ack asks: `env` typed (its id not known), else where the cache saw
    the database (`homes`, also where its data comes from)."""
    need = Need(role, most or role, source)
    targets: list[Place] | None = [("console", None, env)] if env is not None else homes
    return foresee(bindings, user, {"console"}, need, targets, homes)


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
    assert _foresee(bindings, ALICE, Role.OPERATOR) == "refused"
    assert _foresee(bindings, ALICE, Role.VIEWER) == "likely"


def test_nothing_bound_for_the_verbs_providers_is_refused() -> None:
    assert _foresee([], ALICE, Role.VIEWER) == "refused"
    other = [_binding("*", Role.ADMIN, provider="graph")]
    assert _foresee(other, ALICE, Role.VIEWER) == "refused"


def test_a_binding_held_by_others_gives_the_fallback_only() -> None:
    held = [_binding("*", Role.ADMIN, users=("U0BOB",), fallback=None)]
    assert _foresee(held, ALICE, Role.VIEWER) == "refused"
    assert _foresee(held, "U0BOB", Role.ADMIN) == "likely"
    viewers = [_binding("*", Role.ADMIN, users=("U0BOB",), fallback=Role.VIEWER)]
    assert _foresee(viewers, ALICE, Role.VIEWER) == "likely"
    assert _foresee(viewers, ALICE, Role.OPERATOR) == "refused"


def test_a_user_group_needs_io_so_the_ack_only_says_it_is_checking() -> None:
    group = [_binding("*", Role.OPERATOR, users=("S0ONCALL",), fallback=None)]
    assert _foresee(group, ALICE, Role.OPERATOR) == "maybe"
    assert _foresee(group, ALICE, Role.ADMIN) == "refused"


def test_an_environment_typed_is_matched_to_the_binding_named_so() -> None:
    bindings = [_binding("development", Role.ADMIN), _binding("Production", Role.VIEWER)]
    assert _foresee(bindings, ALICE, Role.OPERATOR, "development") == "likely"
    # named as typed, any case: viewer there; `development` could still be production's
    # id as far as the ack can tell (equally specific, the highest role would win)
    assert _foresee(bindings, ALICE, Role.OPERATOR, "production") == "maybe"
    assert _foresee(bindings, ALICE, Role.ADMIN, "production") == "maybe"
    assert _foresee(bindings[1:], ALICE, Role.OPERATOR, "production") == "refused"


def test_an_environment_bound_by_another_word_may_be_it_by_id() -> None:
    """`env=production` where only `env-7f3a` is bound: that may be production's id
    (a binding by id cannot be told from one by another name without I/O)."""
    bindings = [_binding("env-7f3a", Role.ADMIN)]
    assert _foresee(bindings, ALICE, Role.OPERATOR, "production") == "maybe"


def test_a_wildcard_is_likely_unless_a_binding_by_id_may_lower_it() -> None:
    wild = [_binding("*", Role.ADMIN)]
    assert _foresee(wild, ALICE, Role.OPERATOR, "staging") == "likely"
    lowered = [*wild, _binding("env-7f3a", Role.VIEWER)]
    assert _foresee(lowered, ALICE, Role.OPERATOR, "staging") == "maybe"
    # named as typed: equally specific bindings by id can only add (highest role wins)
    named = [_binding("staging", Role.ADMIN), _binding("env-7f3a", Role.VIEWER)]
    assert _foresee(named, ALICE, Role.OPERATOR, "staging") == "likely"


def test_a_binding_that_gives_the_person_nothing_does_not_hide_the_wildcard() -> None:
    """`resolve_for` withholds it, so `*` decides (as `decide` will)."""
    bindings = [_binding("*", Role.ADMIN), _binding("staging", Role.ADMIN, ("U0BOB",), None)]
    assert _foresee(bindings, ALICE, Role.OPERATOR, "staging") == "likely"


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


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(binding_strategy, max_size=6),
    st.sampled_from(list(Role)),
    st.sampled_from(["typed", "cached", "cached-id", "unknown"]),
    st.sampled_from(["staging", "Staging", "env-stg"]),
    st.sampled_from(["env-stg", "env-prd", "env-other"]),
    st.booleans(),
)
def test_the_ack_promises_what_decide_then_does(
    raw: list[Binding], role: Role, known: str, typed: str, env_id: str, in_group: bool
) -> None:
    """Wherever the database turns out to be (any id, the person in the group or not):
    "refused" is denied by `decide`; "likely" is not, in the environment typed, in the
    one the cache holds, or (unknown) in any environment a binding covers."""
    bindings = _unique(raw)
    name = "staging" if typed == "env-stg" else typed
    target_id = typed if typed == "env-stg" else env_id
    target = Target("console", target_id, name, production=False)
    homes: list[Place] | None = {
        "cached": [("console", target_id, name)],
        "cached-id": [("console", target_id, None)],  # its environment's name not listed
    }.get(known)
    foresight = _foresee(bindings, ALICE, role, typed if known == "typed" else None, homes=homes)
    groups = frozenset({"S0ONCALL"}) if in_group else frozenset()
    granted = ChannelPolicy("C0OPS", tuple(bindings), granted=tuple(bindings))
    decision = decide(resolve_for(granted, ALICE, groups), ALICE, "verb", role, False, target)
    if foresight == "refused":
        assert decision.outcome == "denied", (bindings, decision)
    covered = any(
        b.provider == "console" and environment_matches(b.environment, target_id, name)
        for b in bindings
    )
    if foresight == "likely" and (known != "unknown" or covered):
        assert decision.outcome != "denied", (bindings, decision)


def test_without_knowing_where_the_database_is_every_binding_must_give_the_role() -> None:
    """Operator on `*` but viewer on production: `restart billing-db` may be refused
    (billing-db may be in production) unless the cache says where it is."""
    bindings = [_binding("*", Role.OPERATOR), _binding("production", Role.VIEWER)]
    assert _foresee(bindings, ALICE, Role.OPERATOR) == "maybe"
    staging: list[Place] = [("console", "env-stg", "staging")]
    production: list[Place] = [("console", "env-prd", "production")]
    assert _foresee(bindings, ALICE, Role.OPERATOR, homes=staging) == "likely"
    assert _foresee(bindings, ALICE, Role.OPERATOR, homes=production) == "maybe"
    assert _foresee(bindings, ALICE, Role.VIEWER) == "likely"


def test_an_environment_the_cache_knows_is_matched_by_id_and_name() -> None:
    """`env=qa` where the cache shows no such environment of this provider: the command
    will fail, so nothing is promised; with its id known, a binding by id counts."""
    wild = [_binding("*", Role.OPERATOR)]
    need = Need(Role.OPERATOR, Role.OPERATOR)
    assert foresee(wild, ALICE, {"console"}, need, []) == "maybe"
    by_id = [_binding("env-7f3a", Role.OPERATOR)]
    known: list[Place] = [("console", "env-7f3a", "staging")]
    assert foresee(by_id, ALICE, {"console"}, need, known) == "likely"
    assert foresee(by_id, ALICE, {"console"}, need, [("console", None, "staging")]) == "maybe"


def test_data_copied_from_an_environment_typed_needs_the_source_role_there() -> None:
    """`clone sandbox-db copy source_env=production` from a channel not bound there."""
    bindings = [_binding("development", Role.ADMIN), _binding("staging", Role.OPERATOR)]
    need = Need(Role.OPERATOR, Role.OPERATOR, Role.OPERATOR)
    dev: list[Place] = [("console", None, "development")]
    prod: list[Place] = [("console", None, "production")]
    assert foresee(bindings, ALICE, {"console"}, need, dev, dev) == "likely"
    assert foresee(bindings, ALICE, {"console"}, need, dev, prod) == "maybe"


def test_a_binding_held_by_others_may_be_where_the_database_is() -> None:
    """Viewer on env-stg, staging held by Bob alone: `show x` may be in staging, which
    Alice's command would not even search (found by the property test below)."""
    bindings = [
        _binding("env-stg", Role.VIEWER),
        _binding("staging", Role.VIEWER, ("U0BOB",), None),
    ]
    assert _foresee(bindings, ALICE, Role.VIEWER) == "maybe"
    assert _foresee(bindings[:1], ALICE, Role.VIEWER) == "likely"


def test_a_database_whose_environment_name_is_not_cached_may_be_bound_by_name() -> None:
    """The cache holds billing-db's listing under an environment id whose name it no
    longer holds (a failed `envs` dropped the list): the `production` binding may be it."""
    bindings = [_binding("*", Role.OPERATOR), _binding("production", Role.VIEWER)]
    assert _foresee(bindings, ALICE, Role.OPERATOR, homes=[("console", "env-prd", None)]) == (
        "maybe"
    )
    assert _foresee(bindings, ALICE, Role.VIEWER, homes=[("console", "env-prd", None)]) == (
        "likely"
    )


def test_a_verb_whose_forms_need_more_is_only_likely_for_the_most() -> None:
    """`query` reads as viewer, writes as operator: a viewer is told it is checked."""
    viewer = [_binding("*", Role.VIEWER)]
    assert _foresee(viewer, ALICE, Role.VIEWER, most=Role.OPERATOR) == "maybe"
    assert _foresee([_binding("*", Role.ADMIN)], ALICE, Role.VIEWER, most=Role.ADMIN) == "likely"


def test_data_copied_out_needs_the_source_role_where_the_database_is() -> None:
    """`clone billing-db copy env=development`: the source, billing-db, is read where
    it is; admin on development and viewer on production is not enough for that."""
    bindings = [_binding("development", Role.ADMIN), _binding("production", Role.VIEWER)]
    dev: list[Place] = [("console", "env-dev", "development")]
    prod: list[Place] = [("console", "env-prd", "production")]
    op = Role.OPERATOR

    def clone(homes: list[Place] | None) -> Foresight:
        return _foresee(bindings, ALICE, op, "development", most=op, source=op, homes=homes)

    assert clone(None) == "maybe"
    assert clone(dev) == "likely"
    assert clone(prod) == "maybe"
