"""The atheris fuzz harness (tests/fuzz): its targets accept their seeds, and it runs bounded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import SEEDS, TARGETS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_runs_through_its_target(name: str) -> None:
    """Each target takes its seeds, plus empty and junk input, without an unexpected exception."""
    for data in [*SEEDS[name], b"", b"\xff\xfe{[(", b"\n" * 3]:
        TARGETS[name](data)


@pytest.mark.slow
def test_fuzzing_runs_for_a_bounded_time(tmp_path: Path) -> None:
    """``python -m tests.fuzz --target callback --seconds 2`` fuzzes, finds no crash, and stops."""
    pytest.importorskip("atheris")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz",
            "--target",
            "callback",
            "--seconds",
            "2",
            "--artifacts",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done" in result.stderr and "new_units_added" in result.stderr
    assert list(tmp_path.iterdir()) == []
