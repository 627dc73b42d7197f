"""The Docker image keeps its data: no Docker engine runs here, so the image's entry
command runs with the image's environment and paths moved under a temporary HOME, and
the database must land under the declared VOLUME; the health check uses /healthz."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.reliability.rel_procs import Simulate, bot_env, write_config
from tests.reliability.rel_support import free_port

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IMAGE_HOME = "/home/graphops"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def last(word: str) -> str:
    return [rest for w, rest in instructions() if w == word][-1]


def exec_form(text: str) -> list[str]:
    form = json.loads(text)
    assert isinstance(form, list), "use the exec form: no shell in the way of signals"
    return form


def test_the_volume_folder_is_made_and_owned_by_the_runtime_user():
    volume = json.loads(last("VOLUME"))[0]
    user = last("USER")
    runs = [rest for word, rest in instructions() if word == "RUN"]
    assert any(
        f"mkdir -p {volume}" in run and f"chown {user}:{user} {volume}" in run for run in runs
    )
    assert image_env()["GRAPHOPS_DATABASE"].startswith(volume + "/")


def test_dependencies_are_pinned_for_the_image():
    installs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    assert installs and all("-c constraints.txt" in run for run in installs)
    assert any(
        rest.split()[:-1].count("constraints.txt") for w, rest in instructions() if w == "COPY"
    )
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pinned, f"{name} is not in constraints.txt"


@pytest.fixture
def simulate():
    sim = Simulate(step_seconds=0.1)
    try:
        yield sim
    finally:
        sim.stop()


def test_entry_command_with_the_image_defaults_keeps_the_database_in_the_volume(
    simulate, tmp_path: Path
):
    home = tmp_path / "home" / "graphops"

    def moved(value: str) -> str:
        return value.replace(IMAGE_HOME, str(home))

    env = {key: moved(value) for key, value in image_env().items()}
    volume = Path(moved(json.loads(last("VOLUME"))[0]))
    volume.mkdir(parents=True)  # what the image's RUN mkdir does
    config_file = Path(env["GRAPHOPS_CONFIG"])
    port = free_port()
    # The README's config keeps `database = "graphops.sqlite3"`: the image's variable wins.
    written = write_config(tmp_path, simulate, port)
    text = re.sub(r'database = ".*"', 'database = "graphops.sqlite3"', written.read_text())
    config_file.write_text(text)
    process_env = {**bot_env(config_file), **env, "HOME": str(home)}
    command = [sys.executable, "-m", "bot.cli", *exec_form(last("CMD"))[1:]]
    assert exec_form(last("CMD"))[0] == "graphops"
    health = last("HEALTHCHECK")
    check = [sys.executable, "-m", "bot.cli", *exec_form(health.split("CMD", 1)[1])[1:]]
    serve = subprocess.Popen(
        command,
        cwd=moved(last("WORKDIR")),
        env=process_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(check, env=process_env, capture_output=True, text=True)
            if result.returncode == 0:
                break
            assert serve.poll() is None, serve.communicate()[0]
            assert time.monotonic() < deadline, result.stderr
            time.sleep(0.2)
        assert f"healthy: http://127.0.0.1:{port}/healthz" in result.stdout
    finally:
        serve.terminate()
        output = serve.communicate(timeout=15)[0]
    assert (volume / "graphops.sqlite3").exists(), output
    assert not (config_file.parent / "graphops.sqlite3").exists()
    assert f"database {volume / 'graphops.sqlite3'} (from $GRAPHOPS_DATABASE)" in output
    stopped = subprocess.run(check, env=process_env, capture_output=True, text=True)
    assert stopped.returncode == 1 and "unhealthy" in stopped.stderr


def test_readme_docker_run_matches_the_image():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run with Docker", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```sh\n[^`]*?(docker run.*?)```", section, re.DOTALL)
    assert command, "the README shows the exact docker run"
    text = command.group(1)
    volume = json.loads(last("VOLUME"))[0]
    assert f":{volume}" in text
    assert f":{image_env()['GRAPHOPS_CONFIG']}:ro" in text
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        assert f"-e {variable}" in text
    assert "-p 3000:3000" in text
    assert os.path.basename(image_env()["GRAPHOPS_DATABASE"]) not in text  # no override needed
