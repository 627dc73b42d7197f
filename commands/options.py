"""The `key=value` options verbs share (pydantic models; an unknown key is refused).

A verb's own options subclass these in its module; `commands.registry.Verb.bind`
validates them and says in words what was wrong and what works (core.words.explain:
`reset= takes true or false, not 'maybe'`, `unknown option colour= (options: env=)`);
a field's `description` is what works for a text value.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NoOptions(BaseModel):
    """Options model of a verb that takes none; the base of every other (extra keys refused)."""

    model_config = ConfigDict(extra="forbid")


class AnyOptions(BaseModel):
    """Options model of a verb that passes options on to another command (`plan`)."""

    model_config = ConfigDict(extra="allow")


class EnvOption(NoOptions):
    """`env=`: the environment (name or id) to look in."""

    env: str | None = Field(default=None, description="environment name or id")


class ChannelOption(NoOptions):
    """`channel=`: the channel a command is about (default: where it is typed)."""

    channel: str | None = None
