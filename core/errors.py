"""The one error every room may raise for the requester to read."""

from __future__ import annotations


class UserError(Exception):
    """A problem the requester can fix (unknown name, ambiguity, bad value); no trace shown.

    Its message is shown as is, so it says what was wrong and what would work.
    """
