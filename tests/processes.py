"""Running real relay processes in tests: environment, start, wait until ready, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from relay.embedded import free_port


def relay_env(**settings: str) -> dict[str, str]:
    """The process environment with only the given RELAY_* settings (others removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_LOG_FORMAT"] = "json"
    env.update({f"RELAY_{k.upper()}": v for k, v in settings.items()})
    return env


class RelayProcess:
    """``python -m relay <command>`` as a child process on its own port."""

    def __init__(self, command: str, log_path: Path, **settings: str) -> None:
        self.port = int(settings.pop("port", 0) or free_port())
        self.env = relay_env(port=str(self.port), **settings)
        self.command = command
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 20.0) -> RelayProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay", *self.command.split()],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay {self.command} exited {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + "/readyz", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"relay {self.command} not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit code once it has stopped."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
