"""All three simulators together, as `graphops simulate` and `graphops demo` run them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from simulators.slack import SlackStandIn
from simulators.typedb import TypeDBSimulator


@dataclass
class SimulatorSuite:
    """A Console API, a v1 API and a TypeDB server simulator, and a Slack Web API
    stand-in, on loopback."""

    step_seconds: float = 1.0
    typedb_username: str = "admin"
    typedb_password: str = "password"
    console: ConsoleSimulator = field(init=False)
    v1: V1Simulator = field(init=False)
    typedb: TypeDBSimulator = field(init=False)
    slack: SlackStandIn = field(init=False)

    def __post_init__(self) -> None:
        self.console = ConsoleSimulator(step_seconds=self.step_seconds)
        self.v1 = V1Simulator(step_seconds=self.step_seconds)
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
        return [
            f"GrapheneDB Console API  {self.console.base_url}  "
            f"client_id={self.console.client_id} client_secret={self.console.client_secret}",
            f"GrapheneDB API v1       {self.v1.base_url}/v1  api_key={self.v1.api_key}",
            f"TypeDB HTTP API         {self.typedb.base_url}  "
            f"username={self.typedb_username} password={self.typedb_password}",
            f"Slack Web API stand-in  {self.slack.api_url}  (what the bot sent: "
            f"{self.slack.url}/_standin/calls)",
        ]
