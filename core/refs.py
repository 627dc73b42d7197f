"""Typed references to Slack users, channels and user groups inside reply text.

Reply text is plain text, never transport markup: the core does not write
`<@U123>`. A reference is embedded with `UserRef`, `ChannelRef` or `GroupRef`,
whose `str()` is a marker made of two Unicode private-use characters
(U+E000 ... U+E001) around `kind:id`. Each transport renders markers its own
way with `render()`: the Slack renderer as `<@U123>` / `<#C123>` /
`<!subteam^S123>` (Slack's "Formatting text for app surfaces": mentions), the
shell as `@name` / `#name`, logs and audit rows as `@U123` / `#C123` (`plain`).

Only well-formed markers whose id looks like a Slack id are references; a
stray marker character is dropped by `render`. Text typed by people passes
through `strip_markers` at the transport edge, so nobody can forge a
reference by typing the private-use characters.

    >>> text = f"approved by {UserRef('U0BOB')} in {ChannelRef('C0PROD')}"
    >>> plain(text)
    'approved by @U0BOB in #C0PROD'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

OPEN = "\ue000"
CLOSE = "\ue001"

# Slack ids: users U/W, channels C/G/D (public, private, DM), user groups S.
_ID = {
    "user": re.compile(r"[UW][A-Z0-9]{1,20}"),
    "channel": re.compile(r"[CGD][A-Z0-9]{1,20}"),
    "group": re.compile(r"S[A-Z0-9]{1,20}"),
    "thread": re.compile(r"[CGD][A-Z0-9]{1,20}/[0-9]{1,12}\.[0-9]{1,8}"),
}
_MARKER = re.compile(OPEN + r"(user|channel|group|thread):([A-Z0-9/.]{1,43})" + CLOSE)


@dataclass(frozen=True)
class Ref:
    """A reference to something a transport knows by id."""

    id: str
    kind: ClassVar[str] = ""

    @property
    def valid(self) -> bool:
        """Whether the id has the shape of a Slack id of this kind."""
        return bool(_ID[self.kind].fullmatch(self.id))

    def __str__(self) -> str:
        # An id that is not Slack-shaped (a shell user name) stays plain text, never a marker.
        if not self.valid:
            return ("#" if self.kind in ("channel", "thread") else "@") + strip_markers(self.id)
        return f"{OPEN}{self.kind}:{self.id}{CLOSE}"


@dataclass(frozen=True)
class UserRef(Ref):
    """A person (`U…` or `W…`)."""

    kind: ClassVar[str] = "user"


@dataclass(frozen=True)
class ChannelRef(Ref):
    """A conversation: public or private channel, or DM (`C…`, `G…`, `D…`)."""

    kind: ClassVar[str] = "channel"


@dataclass(frozen=True)
class GroupRef(Ref):
    """A Slack user group (`S…`)."""

    kind: ClassVar[str] = "group"


@dataclass(frozen=True)
class ThreadRef(Ref):
    """A message thread: `<channel id>/<ts of its root message>` (a link where the
    transport has one: Slack's permalink form `https://slack.com/archives/C…/p…`)."""

    kind: ClassVar[str] = "thread"

    @classmethod
    def of(cls, channel: str, ts: str) -> ThreadRef:
        """The thread rooted at message `ts` in `channel`."""
        return cls(f"{channel}/{ts}")

    @property
    def channel(self) -> str:
        """The channel id the thread is in."""
        return self.id.partition("/")[0]

    @property
    def ts(self) -> str:
        """The ts of the thread's root message."""
        return self.id.partition("/")[2]


_KINDS: dict[str, type[Ref]] = {
    "user": UserRef,
    "channel": ChannelRef,
    "group": GroupRef,
    "thread": ThreadRef,
}


def posted_in(channel: str, thread_ts: str | None) -> str:
    """`in #ops (thread)`: the channel, and a link to the thread when there is one (Slack
    shows the link as "thread"; the shell as the word)."""
    if not thread_ts:
        return f"in {ChannelRef(channel)}"
    return f"in {ChannelRef(channel)} ({ThreadRef.of(channel, thread_ts)})"


def person(ident: str) -> Ref:
    """A user or a user group, by the shape of its id (approvers may be either)."""
    return GroupRef(ident) if ident.startswith("S") else UserRef(ident)


def segments(text: str) -> Iterator[str | Ref]:
    """The text as plain strings and references, in order (stray markers dropped)."""
    if OPEN not in text and CLOSE not in text:  # most text: no reference (a table cell)
        if text:
            yield text
        return
    position = 0
    for match in _MARKER.finditer(text):
        if match.start() > position:
            yield strip_markers(text[position : match.start()])
        kind, ident = match.groups()
        ref = _KINDS[kind](ident)
        yield ref if ref.valid else ident
        position = match.end()
    if position < len(text):
        yield strip_markers(text[position:])


def render(text: str, ref: Callable[[Ref], str], escape: Callable[[str], str] = lambda s: s) -> str:
    """`text` with each reference rendered by `ref` and every plain part by `escape`."""
    return "".join(ref(part) if isinstance(part, Ref) else escape(part) for part in segments(text))


def plain(text: str) -> str:
    """References as `@U123`, `#C123`, `@S123`, `#C123 (thread 1700000000.000100)`: for
    logs, audit rows and plain text."""
    return render(text, plain_ref)


def plain_ref(ref: Ref) -> str:
    """One reference as plain text (see `plain`)."""
    if isinstance(ref, ThreadRef):
        return f"#{ref.channel} (thread {ref.ts})"
    return ("#" if ref.kind == "channel" else "@") + ref.id


def strip_markers(text: str) -> str:
    """Text typed by a person or sent by an API, with any marker character removed."""
    return text.replace(OPEN, "").replace(CLOSE, "")
