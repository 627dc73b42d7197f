"""The Slack stand-in enforces what Slack documents (each rule once, with a raw client),
and the SlackNotifier's patience with rate limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from core.reply import Reply
from simulators.slack import Manifest, SlackStandIn, blocks_size
from tests.bot.slack.slack_support import BOT_TOKEN


def _client(standin: SlackStandIn, token: str = BOT_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=standin.api_url, retry_handlers=[])


async def _error(call: object) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call  # type: ignore[misc]
    return str(caught.value.response["error"])


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_records_calls_and_answers_plausibly(standin: SlackStandIn) -> None:
    client = _client(standin)
    first = await client.chat_postMessage(channel="C0DEV", text="a", blocks=[_section("a")])
    second = await client.chat_postMessage(channel="C0DEV", text="b")
    assert float(second["ts"]) > float(first["ts"])
    assert (await client.auth_test())["user_id"] == "U0GRAPHOPS"
    channels = (await client.users_conversations(user="U0BOB"))["channels"]
    assert [c["id"] for c in channels] == ["C0DEV", "C0ONCALL"]
    assert [c.method for c in standin.calls] == [
        "chat.postMessage",
        "chat.postMessage",
        "auth.test",
        "users.conversations",
    ]
    assert standin.calls[1].body["text"] == "b"
    assert [m.text for m in standin.messages] == ["a", "b"]


async def test_tokens_are_checked(standin: SlackStandIn) -> None:
    assert await _error(_client(standin, "xoxb-wrong").auth_test()) == "invalid_auth"
    assert await _error(_client(standin, "xapp-1-app").auth_test()) == "not_allowed_token_type"
    bot = _client(standin).apps_connections_open(app_token=BOT_TOKEN)
    assert await _error(bot) == "not_allowed_token_type"


async def test_scopes_come_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yml"
    manifest.write_text("oauth_config:\n  scopes:\n    bot: [chat:write]\n")
    standin = SlackStandIn(token=BOT_TOKEN, manifest=Manifest.load(manifest))
    await standin.start()
    try:
        client = _client(standin)
        with pytest.raises(SlackApiError) as caught:
            await client.files_getUploadURLExternal(filename="a.txt", length=1)
        assert caught.value.response["error"] == "missing_scope"
        assert caught.value.response["needed"] == "files:write"
        assert caught.value.response["provided"] == "chat:write"
        # public channel the bot is not in: needs chat:write.public, absent here
        assert await _error(client.chat_postMessage(channel="C0OTHER", text="x")) == (
            "not_in_channel"
        )
        assert await _error(client.users_info(user="U1")) == "missing_scope"
    finally:
        await standin.stop()
    real = Manifest.load()
    assert {"files:write", "chat:write.public", "users:read"} <= real.scopes
    assert real.should_escape and real.messages_tab


async def test_membership(standin: SlackStandIn) -> None:
    client = _client(standin)
    # a public channel the bot is not in: allowed by chat:write.public
    await client.chat_postMessage(channel="C0ELSEWHERE", text="x")
    # private channels and DMs it is not in do not exist for it
    for channel in ("G0SECRET", "D0ALICEBOB"):
        assert await _error(client.chat_postMessage(channel=channel, text="x")) == (
            "channel_not_found"
        )
        assert await _error(client.chat_postEphemeral(channel=channel, user="U0A", text="x")) == (
            "channel_not_found"
        )
    standin.add_conversation("G0TEAM", bot_member=True, members=["U0ALICE"])
    await client.chat_postEphemeral(channel="G0TEAM", user="U0ALICE", text="x")
    error = await _error(client.chat_postEphemeral(channel="G0TEAM", user="U0BOB", text="x"))
    assert error == "user_not_in_channel"
    # files need membership even in public channels
    upload = await client.files_getUploadURLExternal(filename="a.txt", length=1)
    async with httpx.AsyncClient() as http:
        await http.post(upload["upload_url"], content=b"a")
    files = [{"id": upload["file_id"], "title": "a"}]
    refused = client.files_completeUploadExternal(files=files, channel_id="C0ELSEWHERE")
    assert await _error(refused) == "not_in_channel"
    await client.files_completeUploadExternal(files=files, channel_id="C0DEV")


async def test_block_kit_limits(standin: SlackStandIn) -> None:
    client = _client(standin)
    bad = [
        [_section("")],  # empty text
        [_section("x" * 3001)],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        [{"type": "nonsense"}],
        [_section("x")] * 51,
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "a",
                        "text": {"type": "plain_text", "text": "x"},
                    }
                ]
                * 2,
            }
        ],
    ]
    for blocks in bad:
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel="C0DEV", text="x", blocks=blocks)
        assert caught.value.response["error"] == "invalid_blocks", blocks
        assert caught.value.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    # every block within its limit, the message over Slack's total
    total = [_section("x" * 2900)] * 5
    assert await _error(client.chat_postMessage(channel="C0DEV", text="x", blocks=total)) == (
        "msg_blocks_too_long"
    )
    assert blocks_size(total, "json") > blocks_size(total, "text") == 14500


async def test_threads_must_name_their_root(standin: SlackStandIn) -> None:
    client = _client(standin)
    root = (await client.chat_postMessage(channel="C0DEV", text="root"))["ts"]
    reply = (await client.chat_postMessage(channel="C0DEV", text="r", thread_ts=root))["ts"]
    assert standin.violations == []
    await client.chat_postMessage(channel="C0DEV", text="wrong", thread_ts=reply)
    assert len(standin.violations) == 1 and "is a reply" in standin.violations[0]
    standin.violations.clear()


async def test_updates_only_own_messages_and_bursts_are_limited(standin: SlackStandIn) -> None:
    client = _client(standin)
    assert await _error(client.chat_update(channel="C0DEV", ts="1.0", text="x")) == (
        "message_not_found"
    )
    ts = (await client.chat_postMessage(channel="C0DEV", text="a"))["ts"]
    for _ in range(standin.update_burst - 1):  # the refused edit above counts too
        await client.chat_update(channel="C0DEV", ts=ts, text="b")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C0DEV", ts=ts, text="c")
    assert caught.value.response.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) >= 1


async def test_triggers_expire_after_three_seconds_and_serve_once(standin: SlackStandIn) -> None:
    client = _client(standin)
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "T"},
        "blocks": [_section("x")],
    }
    assert await _error(client.views_open(trigger_id="1.2.3", view=view)) == ("invalid_trigger_id")
    trigger = standin.new_trigger("U0BOB")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert await _error(client.views_open(trigger_id=trigger, view=view)) == (
        "exchanged_trigger_id"
    )
    late = standin.new_trigger("U0BOB")
    standin.advance(3.1)
    assert await _error(client.views_open(trigger_id=late, view=view)) == "expired_trigger_id"
    long_title = {**view, "title": {"type": "plain_text", "text": "x" * 25}}
    assert await _error(
        client.views_open(trigger_id=standin.new_trigger("U"), view=long_title)
    ) == ("invalid_arguments")
    view_id, view_hash = opened["view"]["id"], opened["view"]["hash"]
    assert await _error(client.views_update(view_id="V0NOPE", view=view)) == "not_found"
    assert await _error(client.views_update(view_id=view_id, hash="stale", view=view)) == (
        "hash_conflict"
    )
    await client.views_update(view_id=view_id, hash=view_hash, view=view)


async def test_response_url_rules(standin: SlackStandIn) -> None:
    url = standin.new_response_url("D0NOTMEMBER", "U0ALICE")  # works where the bot is not
    async with httpx.AsyncClient() as http:
        for _ in range(5):
            answer = await http.post(url, json={"text": "hi", "response_type": "ephemeral"})
            assert answer.status_code == 200
        used = await http.post(url, json={"text": "sixth"})
        assert used.status_code == 404 and used.json()["error"] == "used_url"
        late = standin.new_response_url("C0DEV", "U0ALICE")
        standin.advance(30 * 60 + 1)
        expired = await http.post(late, json={"text": "late"})
        assert expired.status_code == 404 and expired.json()["error"] == "expired_url"
        fresh = standin.new_response_url("C0DEV", "U0ALICE")
        bad = await http.post(fresh, json={"text": "x", "blocks": [_section("")]})
        assert bad.status_code == 400
    assert [c.body.get("_user") for c in standin.ok_calls("response_url")] == ["U0ALICE"] * 5


def test_command_text_is_escaped_as_slack_sends_it() -> None:
    standin = SlackStandIn(
        users={"U0BOB": "bob"},
        channel_names={"C0INC": "db-incidents"},
        group_handles={"S0DBA": "dba"},
        usergroups={"S0DBA": []},
    )
    sent = standin.encode_text("grant @bob #db-incidents @dba R&D <x> @nobody")
    assert sent == (
        "grant <@U0BOB|bob> <#C0INC|db-incidents> <!subteam^S0DBA|@dba> R&amp;D &lt;x&gt; @nobody"
    )
    plain = SlackStandIn(manifest=Manifest(frozenset(), should_escape=False, messages_tab=False))
    assert plain.encode_text("@bob a>b") == "@bob a&gt;b"


async def test_a_stored_5xx_is_injected_after_the_effect(standin: SlackStandIn) -> None:
    standin.fail_next("chat.postMessage", status=500, stored=True)
    client = _client(standin)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0DEV", text="landed anyway")
    assert [m.text for m in standin.messages] == ["landed anyway"]
    history = await client.conversations_history(channel="C0DEV", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["landed anyway"]


async def test_history_is_paginated_newest_first_after_oldest(standin: SlackStandIn) -> None:
    """conversations.history: newest first, `oldest` exclusive unless `inclusive`, a page
    at most `limit` (and `history_page`) long, `next_cursor` until the end."""
    client = _client(standin)
    stamps = [
        (await client.chat_postMessage(channel="C0DEV", text=f"m{i}"))["ts"] for i in range(5)
    ]
    standin.history_page = 2
    seen, cursor = [], None
    while True:
        page = await client.conversations_history(channel="C0DEV", oldest=stamps[0], cursor=cursor)
        assert len(page["messages"]) <= 2
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert seen == ["m4", "m3", "m2", "m1"]  # m0 is at `oldest`: not included
    standin.history_page = 1000
    whole = await client.conversations_history(
        channel="C0DEV", oldest=stamps[0], inclusive=True, limit=3
    )
    assert [m["text"] for m in whole["messages"]] == ["m4", "m3", "m2"]
    with pytest.raises(SlackApiError):
        await client.conversations_history(channel="C0DEV", cursor="bm90IGEgY3Vyc29y")


async def test_server_errors_are_injected(standin: SlackStandIn) -> None:
    ts = (await _client(standin).chat_postMessage(channel="C0DEV", text="a"))["ts"]
    standin.fail_next("chat.update", status=503)
    client = _client(standin)
    with pytest.raises(SlackApiError):
        await client.chat_update(channel="C0DEV", ts=ts, text="x")
    await client.chat_update(channel="C0DEV", ts=ts, text="x")
    assert [c.status for c in standin.calls_to("chat.update")] == [503, 200]


async def test_the_notifier_waits_out_rate_limits(standin: SlackStandIn) -> None:
    root = (await _client(standin).chat_postMessage(channel="C0DEV", text="root"))["ts"]
    standin.fail_next("chat.postMessage", status=429, times=2, retry_after=0)
    notifier = SlackNotifier(AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url))
    ts = await notifier.post("C0DEV", Reply(title="Step", text="restarting"), thread_ts=root)
    assert ts is not None
    statuses = [c.status for c in standin.calls_to("chat.postMessage")[1:]]
    assert statuses == [429, 429, 200]
    assert standin.calls[-1].body["thread_ts"] == root
    await notifier.update("C0DEV", ts, Reply(title="Done"))
    assert standin.calls_to("chat.update")[0].body["ts"] == ts


async def test_socket_mode_endpoint(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token="xapp-1-test", base_url=standin.api_url)
    url = (await client.apps_connections_open(app_token="xapp-1-test"))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        task = asyncio.ensure_future(standin.send_envelope("slash_commands", {"command": "/gdb"}))
        envelope = await ws.receive_json()
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"]
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"a": 1}}))
        assert await task == {"a": 1}
        await standin.disconnect_sockets()
        assert (await ws.receive_json())["type"] == "disconnect"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)  # a URL serves one connection


def _select(kind: str, options: list[dict[str, object]] | None) -> dict[str, object]:
    element: dict[str, object] = {
        "type": kind,
        "action_id": "choice.pick",
        "placeholder": {"type": "plain_text", "text": "Which?"},
    }
    if options is not None:
        element["options"] = options
    return {"type": "actions", "block_id": "choice:k", "elements": [element]}


def _option(text: str, value: str) -> dict[str, object]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


async def test_select_menus_follow_slacks_rules(standin: SlackStandIn) -> None:
    client = _client(standin)
    good = [
        [_select("static_select", [_option(f"db-{i}", f"k:{i}") for i in range(100)])],
        [_select("external_select", None)],
    ]
    for blocks in good:
        await client.chat_postMessage(channel="C0DEV", text="x", blocks=blocks)
    bad = [
        [_select("static_select", [_option(f"db-{i}", f"k:{i}") for i in range(101)])],
        [_select("static_select", [])],
        [_select("static_select", [_option("x" * 76, "k:0")])],
        [_select("static_select", [_option("x", "v" * 151)])],
        [_select("static_select", [_option("a", "k:0"), _option("b", "k:0")])],
        [_select("external_select", [_option("a", "k:0")])],
    ]
    for blocks in bad:
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel="C0DEV", text="x", blocks=blocks)
        assert caught.value.response["error"] == "invalid_blocks", blocks


def test_payloads_name_the_persons_workspace() -> None:
    standin = SlackStandIn(enterprise_id="E0ORG")
    standin.user_teams["U0PARTNER"] = "T0PARTNER"
    standin.user_teams["U0GRID"] = "T0SIBLING"
    standin.team_enterprises["T0SIBLING"] = "E0ORG"
    home = standin.slash_payload("list", user="U0ALICE", channel="C0DEV")
    assert (home["team_id"], home["enterprise_id"]) == ("T0STANDIN", "E0ORG")
    partner = standin.action_payload("x", "v", user="U0PARTNER", channel="C0DEV")
    assert partner["user"]["team_id"] == "T0PARTNER"
    grid = standin.action_payload("x", "v", user="U0GRID", channel="C0DEV")
    assert grid["user"]["team_id"] == "E0ORG"  # an organization's user: the E… id
    view = standin.submission_payload({"callback_id": "c"}, {}, user="U0PARTNER")
    assert view["view"]["app_installed_team_id"] == "T0STANDIN"
    standin.add_conversation("C0SHARED", bot_member=True)
    mention = standin.mention_event("list", user="U0PARTNER", channel="C0SHARED")
    assert mention["is_ext_shared_channel"] is True
    assert mention["event"]["user_team"] == "T0PARTNER"
    assert mention["authorizations"][0]["team_id"] == "T0STANDIN"
    assert mention["event"]["text"] == "<@U0GRAPHOPS> list"
