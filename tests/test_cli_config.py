"""`relay config`: the settings as a Markdown table, and the README's copy of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.cli import main
from relay.cli.config import current_section, format_duration, section
from relay.settings import Settings
from tests.logstate import saved_logging

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No RELAY_* variable of the machine leaks in; logging configured by `relay` is put back."""
    for name in list(os.environ):
        if name.upper().startswith("RELAY_"):
            monkeypatch.delenv(name)
    with saved_logging():
        yield


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400.0, "1d"), (7200.0, "2h"), (300.0, "5m"), (90.0, "90s"), (2.0, "2s"), (0.25, "250ms")],
)
def test_durations_are_shown_in_their_largest_exact_unit(seconds: float, text: str) -> None:
    """The configuration table writes defaults as an operator would type them."""
    assert format_duration(seconds) == text


def test_relay_config_prints_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """`relay config` prints one Markdown row per field of Settings, with its description."""
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for name, field in Settings.model_fields.items():
        row = next(line for line in out.splitlines() if line.startswith(f"| `{Settings.env_name(name)}` |"))
        assert " ".join((field.description or "").split())[:40] in row.replace("\\|", "|")


def test_readme_configuration_table_matches_the_settings() -> None:
    """The README's table is exactly `relay config`'s output: run `relay config --write README.md`."""
    assert current_section(README.read_text()) == section()


def test_relay_config_write_replaces_only_the_table(tmp_path: Path) -> None:
    """`relay config --write FILE` rewrites the marked table and leaves the rest of FILE alone."""
    path = tmp_path / "README.md"
    start, end = section().splitlines()[0], section().splitlines()[-1]
    path.write_text(f"# Title\n\n{start}\nold table\n{end}\n\n## After\n")
    assert main(["config", "--write", str(path)]) == 0
    assert path.read_text() == f"# Title\n\n{section()}\n\n## After\n"
