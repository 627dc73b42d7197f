"""The menus that ask for a missing argument (core.reply.Choice), kept until one pick.

A Choice is shown only to the person who asked, as a select menu whose option values
are `<menu key>:<index>`: the options themselves (whole command lines) stay here, on
the server. Slack's limits (docs.slack.dev/reference/block-kit/block-elements/
select-menu-element): a static_select holds at most 100 options, each with a text of
75 characters and a value of 150; beyond 100 the menu is an external_select, whose
options Slack asks for as the person types (a `block_suggestion` request, answered
within 3 seconds with at most 100 options: here a filter of the stored list, no I/O).

A pick is accepted once, from the person the menu was made for, and only for an
index the menu listed; anything else (a forged value, a second pick, another person,
an expired menu) is refused with the reason and runs nothing. What a pick runs goes
through the pipeline like a typed command, so the rights are checked again then.

Menus live in this process only (bounded, one hour each), like the "More" pages.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from core.reply import Choice, Option

STATIC_OPTIONS = 100  # a static_select's limit; more becomes an external_select
SUGGESTIONS = 100  # options in one block_suggestion answer
OPTION_TEXT = 75
OPTION_VALUE = 150
BLOCK_PREFIX = "choice:"
PICK_ACTION = "choice.pick"


@dataclass
class Menu:
    """One question asked of one person."""

    user: str
    channel: str
    choice: Choice
    created_at: float
    picked: bool = False


@dataclass(frozen=True)
class Pick:
    """The outcome of a pick: the option to run, or why nothing runs."""

    option: Option | None = None
    refusal: str = ""


@dataclass
class MenuStore:
    """A bounded, expiring map: menu key -> Menu."""

    max_entries: int = 512
    ttl_seconds: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _menus: OrderedDict[str, Menu] = field(default_factory=OrderedDict)

    def put(self, user: str, channel: str, choice: Choice) -> str:
        """Keep `choice`, asked of `user` in `channel`; return its key."""
        self._prune()
        key = secrets.token_urlsafe(9)
        self._menus[key] = Menu(user, channel, choice, self.clock())
        while len(self._menus) > self.max_entries:
            self._menus.popitem(last=False)
        return key

    def get(self, key: str) -> Menu | None:
        """The menu, or None when unknown or expired."""
        self._prune()
        return self._menus.get(key)

    def pick(self, value: str, user: str) -> Pick:
        """Accept `user`'s pick `<key>:<index>` once (see the module docstring)."""
        pick = self.peek(value, user)
        if pick.option is not None:
            menu = self.get(value.partition(":")[0])
            assert menu is not None
            menu.picked = True
        return pick

    def peek(self, value: str, user: str) -> Pick:
        """What `pick` would answer, without taking the pick (the Slack ack keeps the
        command line it stands for before the work takes it)."""
        key, _, index = value.partition(":")
        menu = self.get(key)
        if menu is None:
            return Pick(refusal="That menu expired or was never made here; run the command again.")
        if menu.user != user:
            return Pick(refusal="That menu was made for someone else; run the command yourself.")
        if not index.isdigit() or not 0 <= int(index) < len(menu.choice.options):
            return Pick(refusal="That is not one of the options the menu listed; nothing was run.")
        if menu.picked:
            return Pick(refusal="You already picked from that menu; run the command again.")
        return Pick(option=menu.choice.options[int(index)])

    def suggestions(self, key: str, user: str, query: str) -> list[tuple[int, Option]]:
        """Up to SUGGESTIONS (index, option) whose label holds `query` (case-insensitive),
        for the person the menu was made for only."""
        menu = self.get(key)
        if menu is None or menu.user != user or menu.picked:
            return []
        wanted = query.strip().casefold()
        found = [(i, o) for i, o in enumerate(menu.choice.options) if wanted in o.label.casefold()]
        return found[:SUGGESTIONS]

    def _prune(self) -> None:
        limit = self.clock() - self.ttl_seconds
        for key in [k for k, m in self._menus.items() if m.created_at < limit]:
            del self._menus[key]

    def __len__(self) -> int:
        return len(self._menus)
