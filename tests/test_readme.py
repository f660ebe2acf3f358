"""The README's quick start, run as typed: its commands, read from README.md itself, deliver the
first callback to the test receiver, verified.

The relay runs as the Makefile's ``run`` target runs it (``make run``'s recipe), on a free port and
with its data in a temporary directory; the receiver's port and the relay's are swapped for free
ones in the commands, which otherwise run exactly as written, back to back in one shell, with no
pause between them: the webhook is created and the callback posted a moment later.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from relay.embedded import free_port
from tests.processes import relay_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README_PORT, RECEIVER_PORT = 8080, 9000


def quick_start_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the README's "Quick start" section, in order."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def make_run_recipe(makefile: str) -> str:
    """The command ``make run`` runs (its recipe, with ``$(BIN)`` spelled out)."""
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:] if line.startswith("\t")]
    assert len(lines) == 1, lines
    return lines[0].replace("$(BIN)", ".venv/bin")


def split_terminals(block: str) -> tuple[str, str]:
    """The block's first command (the one for terminal 2, a server) and the rest, as typed."""
    first, _, rest = block.strip().partition("\n")
    assert "# terminal 2" in first, first
    return first.split("#", 1)[0].strip(), rest


def wait_ready(port: int, proc: subprocess.Popen[bytes], within: float) -> None:
    """Until the relay on ``port`` answers ``/readyz`` 200 (its webhook view loaded)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the relay exited {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"the relay was not ready within {within}s")


def on_ports(command: str, relay: int, receiver: int) -> str:
    command = command.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{relay}")
    command = command.replace(f"127.0.0.1:{RECEIVER_PORT}", f"127.0.0.1:{receiver}")
    return command.replace(f"--port {RECEIVER_PORT}", f"--port {receiver}")


def wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], within: float) -> str:
    """``path``'s content once it holds ``text``; fails when ``proc`` exits or time is up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        assert proc.poll() is None, f"exited {proc.returncode}: {content[-2000:]}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path} within {within}s: {content[-2000:]}")


@pytest.fixture
def background(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_quick_start_as_typed_delivers_the_first_callback(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    """make run; relay receive; then create the webhook and post the callback at once: delivered."""
    assert (ROOT / ".venv/bin/relay").exists(), "the quick start runs from a checkout with its .venv"
    first, second = quick_start_blocks((ROOT / "README.md").read_text())
    assert first.splitlines()[0].split("#")[0].strip() == "make run"
    relay_port, receiver_port = free_port(), free_port()
    env = relay_env(port=str(relay_port), data_dir=str(tmp_path / "data"))
    env.pop("RELAY_LOG_FORMAT")

    def start(command: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        background.append(proc)
        return proc

    relay = start(make_run_recipe((ROOT / "Makefile").read_text()), tmp_path / "relay.log")
    receiver_command, typed = (on_ports(c, relay_port, receiver_port) for c in split_terminals(second))
    assert receiver_command.startswith(".venv/bin/relay receive"), receiver_command
    receiver = start(receiver_command, tmp_path / "receiver.log")
    wait_ready(relay_port, relay, within=30)
    wait_for(tmp_path / "receiver.log", "receiving on", receiver, within=30)

    shell = subprocess.run(["bash", "-e", "-c", typed], cwd=ROOT, env=env, capture_output=True, timeout=30)

    assert shell.returncode == 0, shell.stderr.decode(errors="replace")
    assert b'{"status":"accepted","events":1}' in shell.stdout, shell.stdout
    printed = wait_for(tmp_path / "receiver.log", "callfireSignatureOk", receiver, within=10)
    deliveries = [orjson.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert len(deliveries) == 1
    assert deliveries[0]["callfireSignatureOk"] is True
    assert deliveries[0]["standardSignatureOk"] is True
