"""The ``relay`` command itself: its options before any sub-command."""

from __future__ import annotations

import pytest

from relay import __version__
from relay.cli import main


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`relay --version` prints `relay <version>` on stdout and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"relay {__version__}\n"
