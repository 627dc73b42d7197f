"""Turns: where a command's work lets the Slack acks in flight go first.

Slack wants every request acknowledged within 3 seconds, and a command's work
shares the event loop with the acks. An event loop cannot pause a step that has
started, and answers that arrive together (a burst of API answers) would all be
processed in one pass of the loop before it reads the next request. So the work
of a Slack command takes turns (`bot.slack.runtime.AckGate.turn`: one step at a
time, each after the acks then in flight, the oldest command's step first), and
the places that start a long synchronous step ask for a turn first with
`take_turn`: the HTTP layer when an answer has come (clients/http.py: reading it,
the models, the audit row, the reply and its rendering follow). Whoever runs the
work sets the turn function for its asyncio task with `taking_turns`; elsewhere
(the shell, the tracker, tests) `take_turn` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

Turn = Callable[[], Awaitable[None]]

_turn: ContextVar[Turn | None] = ContextVar("turn", default=None)


async def take_turn() -> None:
    """Wait for this task's turn (if its runner set one, see `taking_turns`)."""
    turn = _turn.get()
    if turn is not None:
        await turn()


@contextlib.contextmanager
def taking_turns(turn: Turn) -> Iterator[None]:
    """`take_turn` awaits `turn` inside (this task and the tasks it starts)."""
    token = _turn.set(turn)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # closed at shutdown in another context
            _turn.reset(token)
