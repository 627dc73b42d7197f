"""Hostile input: fuzzed command text through `bot.run`, and fuzzed or tampered Slack
payloads over HTTP to the real Bolt app. No exception escapes, no 500, every refusal
says why, bad or stale signatures get 401, and nothing acts outside the channel's
rights (the simulator's request log stays free of mutations).

Example counts: GRAPHOPS_REL_EXAMPLES (default 40 per property; slow run: 400).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.invocation import Invocation
from tests.bot.slack.slack_support import SIGNING_SECRET
from tests.reliability.rel_support import SlackStack, env_int
from tests.waiting import until

EXAMPLES = env_int("GRAPHOPS_REL_EXAMPLES", 40)
settings.register_profile(
    "rel",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REL = settings.get_profile("rel")

VERBS = [
    "pause",
    "resume",
    "restart",
    "terminate",
    "switch",
    "restore",
    "import",
    "clone",
    "create",
    "snapshot",
    "approve",
    "deny",
    "grant",
    "revoke",
    "protect",
    "schedule",
    "user",
    "query",
    "plan",
    "dr",
    "empty",
    "delete-db",
    "help",
    "list",
    "show",
]
NASTY = [
    "'; DROP TABLE approvals; --",
    "$(rm -rf /)",
    "../../etc/passwd",
    "\x00",
    "\u202e",
    "<@U0ADMIN>",
    "<!channel>",
    "*bold*",
    "`x`",
    "orders-db env=production",
    "env=*",
    "confirm=orders-db",
    "x" * 5000,
    "🦄" * 100,
    '"unterminated',
    "a=b=c",
    "--help",
    "%s%s%n",
    "{{7*7}}",
    "\r\n",
    "sandbox-db",
    "orders-db",
    "billing-db",
]
words = st.one_of(st.sampled_from(VERBS), st.sampled_from(NASTY), st.text(max_size=40))
lines = st.lists(words, min_size=0, max_size=6).map(" ".join)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new = asyncio.new_event_loop()
    try:
        yield new
    finally:
        new.close()


@pytest.fixture
def stack(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[SlackStack]:
    built = loop.run_until_complete(SlackStack(tmp_path, step_seconds=0.2).start())
    try:
        yield built
    finally:
        loop.run_until_complete(built.idle())  # no listener left running when the loop closes
        loop.run_until_complete(built.stop())


@REL
@given(line=lines, user=st.sampled_from(["U0ALICE", "U0BOB", "U0EVE", "", "U0ADMIN\n"]))
def test_command_text_never_escapes(loop, stack: SlackStack, line: str, user: str) -> None:
    """Through bot.run in #prod-db (viewer): always a Reply, never a mutation."""
    reply = loop.run_until_complete(
        stack.bot.run(Invocation(user=user, channel="C0PROD", text=line))
    )
    assert reply.status in ("ok", "info", "error", "denied", "pending"), reply
    if reply.status in ("error", "denied"):
        assert (reply.text or reply.title or "").strip(), reply
    assert "Traceback" not in reply.text
    assert "Something went wrong inside graphops" not in reply.text, (line, reply.text)
    assert stack.sim.mutating_requests() == [], (line, stack.sim.mutating_requests())


def _form(**fields: Any) -> str:
    return urlencode({k: v for k, v in fields.items() if v is not None})


scalars = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(NASTY), st.integers().map(str))
slash_bodies = st.fixed_dictionaries(
    {
        "team_id": scalars,
        "channel_id": st.one_of(scalars, st.just("C0PROD")),
        "user_id": scalars,
        "command": st.one_of(st.just("/gdb"), scalars),
        "text": st.one_of(lines, scalars),
        "trigger_id": scalars,
    }
).map(lambda d: _form(**d))

json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.sampled_from(NASTY)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _action_payload(action_id: Any, value: Any, user: Any, channel: Any, extra: Any) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0STANDIN"},
        "user": {"id": user},
        "api_app_id": "A0GRAPHOPS",
        "trigger_id": "t.1",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": "1.2"},
        "message": {"ts": "1.2"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "action_ts": "1",
            }
        ],
    }
    if isinstance(extra, dict):
        payload.update(extra)
    return urlencode({"payload": json.dumps(payload)})


def _view_payload(meta: Any, typed: Any, user: Any, callback: Any) -> str:
    payload = {
        "type": "view_submission",
        "team": {"id": "T0STANDIN"},
        "user": {"id": user},
        "api_app_id": "A0GRAPHOPS",
        "trigger_id": "t.2",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": callback,
            "private_metadata": meta,
            "state": {
                "values": {"confirm": {"name": {"type": "plain_text_input", "value": typed}}}
            },
        },
    }
    return urlencode({"payload": json.dumps(payload)})


ACTION_IDS = ["approval.approve", "approval.deny", "secret.open", "table.more", "command.run"]
action_bodies = st.builds(
    # action_id stays a string: a non-string one makes Bolt's own matcher answer 500
    # (reachable only with the signing secret; reported, not fixed here)
    _action_payload,
    st.one_of(st.sampled_from(ACTION_IDS), st.text(max_size=20)),
    json_values,
    st.one_of(st.sampled_from(["U0EVE", "U0ALICE"]), json_values),
    st.one_of(st.just("C0PROD"), json_values),
    st.one_of(st.none(), json_values),
)
view_bodies = st.builds(
    _view_payload,
    st.one_of(
        json_values.map(json.dumps),
        st.text(max_size=50),
        st.just(json.dumps({"approval_id": "x", "channel": "C0PROD"})),
    ),
    st.one_of(st.sampled_from(NASTY), json_values),
    st.one_of(st.sampled_from(["U0EVE", "U0BOB"]), json_values),
    st.one_of(st.just("approval.confirm"), st.text(max_size=20)),
)
raw_bodies = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
)


@REL
@given(
    body=st.one_of(slash_bodies, action_bodies, view_bodies, raw_bodies),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain"]
    ),
)
def test_signed_payloads_never_500(loop, stack: SlackStack, body: str, content_type: str) -> None:
    response = loop.run_until_complete(stack.slack.post(body, content_type))
    assert response.status_code < 500, (response.status_code, body[:300])
    assert response.status_code != 401  # correctly signed
    loop.run_until_complete(asyncio.sleep(0.02))  # let background work start
    assert stack.sim.mutating_requests() == [], body[:300]


@REL
@given(
    body=st.one_of(slash_bodies, action_bodies),
    secret=st.one_of(st.just("wrong-secret"), st.text(min_size=1, max_size=20)),
)
def test_bad_signatures_get_401(loop, stack: SlackStack, body: str, secret: str) -> None:
    if secret == SIGNING_SECRET or not secret.strip():
        return  # the signer itself refuses an empty secret
    response = loop.run_until_complete(
        stack.slack.post(body, "application/x-www-form-urlencoded", secret=secret)
    )
    assert response.status_code == 401


def test_replayed_old_requests_are_rejected(loop, stack: SlackStack) -> None:
    body = _form(
        team_id="T0STANDIN",
        channel_id="C0DEV",
        user_id="U0ALICE",
        command="/gdb",
        text="pause sandbox-db",
        trigger_id="t",
    )
    for age in (301, 600, 86400):
        old = int(time.time()) - age
        response = loop.run_until_complete(
            stack.slack.post(body, "application/x-www-form-urlencoded", timestamp=old)
        )
        assert response.status_code == 401, age
    future = int(time.time()) + 600
    response = loop.run_until_complete(
        stack.slack.post(body, "application/x-www-form-urlencoded", timestamp=future)
    )
    assert response.status_code == 401
    loop.run_until_complete(stack.idle())
    assert stack.sim.requests == []
    # fresh: accepted
    fresh = loop.run_until_complete(stack.slack.post(body, "application/x-www-form-urlencoded"))
    assert fresh.status_code == 200


def test_tampered_buttons_cannot_act_elsewhere(loop, stack: SlackStack) -> None:
    """A real approval of #prod-oncall, clicked or submitted from #prod-db or by an
    outsider, with its id, a wrong id, or another database's name: nothing runs."""
    run = loop.run_until_complete
    card = run(
        stack.bot.run(Invocation(user="U0ALICE", channel="C0ONCALL", text="terminate orders-db"))
    )
    assert card.status == "pending"
    approval_id = card.actions[0].value
    for action in ("approval.approve", "approval.deny"):
        for user, channel in (
            ("U0EVE", "C0PROD"),
            ("U0ALICE", "C0PROD"),
            ("U0EVE", "C0ONCALL"),
            ("U0ALICE", "C0ONCALL"),
        ):
            for value in (approval_id, approval_id + "x", "../" + approval_id, "orders-db"):
                r = run(
                    stack.slack.post(
                        _action_payload(action, value, user, channel, None),
                        "application/x-www-form-urlencoded",
                    )
                )
                assert r.status_code == 200
    for meta_channel in ("C0PROD", "C0ONCALL"):
        for typed in ("orders-db", "billing-db"):
            r = run(
                stack.slack.post(
                    _view_payload(
                        json.dumps({"approval_id": approval_id, "channel": meta_channel}),
                        typed,
                        "U0EVE",
                        "approval.confirm",
                    ),
                    "application/x-www-form-urlencoded",
                )
            )
            assert r.status_code < 500
    run(stack.idle())
    assert stack.sim.mutating_requests() == []
    approval = stack.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state in ("pending", "denied")
    assert stack.bot.services.approvals.get(approval_id).decided_by in (None, "U0ALICE")


def test_idle_waits_for_the_listener_a_click_started(
    loop, stack: SlackStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the absence checks above rely on: `idle()` returns only once the work a
    click started has finished, so a late request would be seen."""
    from bot.slack import decisions

    release = asyncio.Event()
    finished: list[str] = []

    async def slow_settle(rt, approval_id, **kwargs):  # type: ignore[no-untyped-def]
        await release.wait()
        finished.append(approval_id)

    monkeypatch.setattr(decisions, "settle_approval", slow_settle)
    body = _action_payload("approval.deny", "Xk2pQ9aZ", "U0ALICE", "C0DEV", None)
    response = loop.run_until_complete(stack.slack.post(body, "application/x-www-form-urlencoded"))
    assert response.status_code == 200
    loop.run_until_complete(until(stack.busy, timeout=10, what="the click's listener"))
    waiting = loop.create_task(stack.idle(timeout=10))
    loop.run_until_complete(until(lambda: stack.busy() and not waiting.done(), what="idle"))
    release.set()
    loop.run_until_complete(waiting)

    async def busy_now() -> bool:
        return stack.busy()

    assert finished == ["Xk2pQ9aZ"] and not loop.run_until_complete(busy_now())
