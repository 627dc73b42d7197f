"""All three simulators together, as `graphops simulate` and `graphops demo` run them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from simulators.slack import SlackStandIn
from simulators.typedb import TypeDBSimulator


@dataclass
class SimulatorSuite:
    """A Console API, a v1 API and a TypeDB server simulator, and a Slack Web API
    stand-in, on loopback.

    ``shapes`` names shape variants (see :func:`shape_variants`); each goes to every
    simulator that has it, and a name no simulator has is a ValueError.
    """

    step_seconds: float = 1.0
    typedb_username: str = "admin"
    typedb_password: str = "password"
    shapes: tuple[str, ...] = ()
    console: ConsoleSimulator = field(init=False)
    v1: V1Simulator = field(init=False)
    typedb: TypeDBSimulator = field(init=False)
    slack: SlackStandIn = field(init=False)

    def __post_init__(self) -> None:
        console, v1 = split_shapes(self.shapes)
        self.console = ConsoleSimulator(step_seconds=self.step_seconds, shapes=console)
        self.v1 = V1Simulator(step_seconds=self.step_seconds, shapes=v1)
        self.typedb = TypeDBSimulator(username=self.typedb_username, password=self.typedb_password)
        # the demo's channels (bot/demo.py), with the bot invited as the README asks
        self.slack = SlackStandIn(channels=["C0DEV", "C0PROD", "C0ONCALL", "C0INCIDENT"])

    async def start(
        self, host: str = "127.0.0.1", ports: tuple[int, int, int, int] = (0, 0, 0, 0)
    ) -> None:
        """Start the servers (port 0: any free port)."""
        await self.console.start(host, ports[0])
        await self.v1.start(host, ports[1])
        await self.typedb.start(host, ports[2])
        await self.slack.start(host, ports[3])

    async def stop(self) -> None:
        """Stop the servers."""
        for sim in (self.console, self.v1, self.typedb, self.slack):
            await sim.stop()

    def urls(self) -> dict[str, str]:
        """Where each simulator listens."""
        return {
            "console": self.console.base_url,
            "v1": self.v1.base_url + "/v1",
            "typedb": self.typedb.base_url,
            "slack": self.slack.url,
            "slack_api": self.slack.api_url,
        }

    def write_urls(self, path: str) -> None:
        """Write `urls()` as JSON, atomically (a reader never sees half a file)."""
        target = Path(path)
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_text(json.dumps(self.urls()), encoding="utf-8")
        partial.replace(target)

    def describe(self) -> list[str]:
        """Where each simulator listens and its demo credentials (they are not secrets)."""
        shapes = ", ".join(self.shapes) or "the documented/observed ones (default)"
        return [
            f"Response shapes: {shapes}",
            f"GrapheneDB Console API  {self.console.base_url}  "
            f"client_id={self.console.client_id} client_secret={self.console.client_secret}",
            f"GrapheneDB API v1       {self.v1.base_url}/v1  api_key={self.v1.api_key}",
            f"TypeDB HTTP API         {self.typedb.base_url}  "
            f"username={self.typedb_username} password={self.typedb_password}",
            f"Slack Web API stand-in  {self.slack.api_url}  (what the bot sent: "
            f"{self.slack.url}/_standin/calls)",
        ]


def shape_variants() -> dict[str, str]:
    """Every shape variant of the suite's simulators: name -> what changes (and where)."""
    variants: dict[str, str] = {}
    for sim, where in ((ConsoleSimulator, "Console"), (V1Simulator, "v1")):
        for name, what in sim.SHAPES.items():
            variants[name] = (
                f"{variants[name]}; {where}" if name in variants else f"{where}: {what}"
            )
    return variants


def split_shapes(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(Console variants, v1 variants) of ``names``; ValueError for a name neither has."""
    wanted = [name.strip() for name in names if name.strip()]
    unknown = [
        n for n in wanted if n not in ConsoleSimulator.SHAPES and n not in V1Simulator.SHAPES
    ]
    if unknown:
        known = ", ".join(sorted(shape_variants()))
        raise ValueError(f"no shape variant {unknown[0]!r} (variants: {known})")
    return (
        tuple(n for n in wanted if n in ConsoleSimulator.SHAPES),
        tuple(n for n in wanted if n in V1Simulator.SHAPES),
    )
