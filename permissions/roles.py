"""Roles a channel can hold for an environment: viewer < operator < admin."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """Ordered roles; a higher value includes everything a lower one may do."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """Parse a role name (case-insensitive), e.g. ``"operator"``.

        Raises ``ValueError`` naming the valid roles when ``text`` is not one.
        """
        cleaned = str(text).strip().lower()
        for role in cls:
            if role.label == cleaned:
                return role
        valid = ", ".join(role.label for role in cls)
        raise ValueError(f"unknown role {text!r}; valid roles are: {valid}")

    @property
    def label(self) -> str:
        """The lower-case name used in messages, the CLI and policy files."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label
