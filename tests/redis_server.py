"""A private redis-server for the test run, on a free port, which tests may stop and restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

from relay.embedded import EmbeddedRedis


class PrivateRedis(EmbeddedRedis):
    """The embedded-Redis launcher, pointed at a temporary directory.

    ``restart(keep_data=True)`` reloads the AOF (when started with ``appendonly=True``);
    ``restart(keep_data=False)`` comes back empty, as a Redis without persistence does.
    """

    def __init__(self, appendonly: bool = False) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="relay-test-redis-")
        super().__init__(Path(self._tmp.name), appendonly=appendonly)

    def restart(self, keep_data: bool = True) -> None:
        self.stop()
        if not keep_data:
            for path in self.data_dir.glob("*"):
                if path.is_file() and path.name != "redis.log":
                    path.unlink()
                elif path.is_dir():
                    for inner in path.glob("*"):
                        inner.unlink()
        self.start()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()
