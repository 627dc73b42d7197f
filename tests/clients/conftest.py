"""Every client test runs against the documented shapes and against each shape variant."""

from __future__ import annotations

import pytest

from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from tests.conftest import shape_params


@pytest.fixture(params=shape_params(ConsoleSimulator))
def console_shapes(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return tuple(request.param)


@pytest.fixture(params=shape_params(V1Simulator))
def v1_shapes(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return tuple(request.param)
