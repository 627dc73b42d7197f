"""core.refs: references survive as typed markers and render per transport."""

import pytest

from core.refs import OPEN, ChannelRef, GroupRef, UserRef, person, plain, render, segments


def slack(ref):
    return {"user": "<@{}>", "channel": "<#{}>", "group": "<!subteam^{}>"}[ref.kind].format(ref.id)


def test_slack_rendering_escapes_plain_parts_only():
    text = f"{UserRef('U0BOB')} asked <!channel> & {ChannelRef('C0PROD')} {GroupRef('S0DBA')}"
    out = render(text, slack, lambda s: s.replace("&", "&amp;").replace("<", "&lt;"))
    assert out == "<@U0BOB> asked &lt;!channel> &amp; <#C0PROD> <!subteam^S0DBA>"


def test_plain_and_segments():
    text = f"by {UserRef('W0X')} in {ChannelRef('D0DM')}"
    assert plain(text) == "by @W0X in #D0DM"
    assert list(segments(text)) == ["by ", UserRef("W0X"), " in ", ChannelRef("D0DM")]


def test_forged_or_stray_markers_are_not_references():
    forged = f"{OPEN}user:lowercase\ue001 and {OPEN}"
    assert plain(forged) == "user:lowercase and "


@pytest.mark.parametrize("bad", ["", "C0", "u1", "U1>", "<@U1>", "alice"])
def test_ids_that_are_not_slack_ids_stay_plain_text(bad):
    assert OPEN not in str(UserRef(bad))
    assert str(UserRef(bad)) == "@" + bad


def test_person_picks_group_or_user():
    assert person("S1") == GroupRef("S1")
    assert person("U1") == UserRef("U1")


def test_a_thread_is_a_reference_too():
    from core.refs import ThreadRef

    thread = ThreadRef.of("C0DEV", "1700000000.000100")
    assert (thread.channel, thread.ts) == ("C0DEV", "1700000000.000100")
    assert plain(f"see {thread}") == "see #C0DEV (thread 1700000000.000100)"
    assert list(segments(str(thread))) == [thread]
