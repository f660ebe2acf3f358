"""``relay config``: every setting as a Markdown table, generated from ``relay.settings.Settings``.

The README's configuration table is this command's output between the two marker comments;
``relay config --write README.md`` refreshes it and a test checks that the two agree.
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

from pydantic import BeforeValidator
from pydantic.fields import FieldInfo

from relay.cli.common import CliError
from relay.settings import Settings
from relay.settings_types import parse_duration, parse_schedule

BEGIN = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"

_SPANS = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def format_duration(seconds: float) -> str:
    """``86400.0`` -> ``1d``, ``0.25`` -> ``250ms``, ``90.0`` -> ``90s``: the largest exact unit."""
    for unit, size in _SPANS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def _validators(field: FieldInfo) -> set[Any]:
    """The BeforeValidator functions of a field, looking inside ``X | None`` too."""
    found = {m.func for m in field.metadata if isinstance(m, BeforeValidator)}
    for arg in typing.get_args(field.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, BeforeValidator):
                found.add(meta.func)
    return found


def format_default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    kinds = _validators(field)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if parse_schedule in kinds:
        return "`" + ", ".join(format_duration(v) for v in value) + "`"
    if parse_duration in kinds:
        return f"`{format_duration(float(value))}`"
    if not isinstance(value, str | int | float | Path) and (not value or not str(value)):
        return "unset"  # an empty secret set, credential list or network list
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table() -> str:
    """The Markdown table of every setting: variable, default, description."""
    lines = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        variable = f"`{Settings.env_name(name)}`"
        lines.append(f"| {variable} | {format_default(field)} | {_cell(field.description or '')} |")
    return "\n".join(lines) + "\n"


def section() -> str:
    """The table with its marker comments, as it stands in the README."""
    return f"{BEGIN}\n{table()}{END}"


def replace_section(text: str) -> str:
    """``text`` with the region between the markers replaced by the current table."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise CliError(f"no configuration table markers found: add {BEGIN} and {END}")
    return text[:start] + section() + text[end + len(END) :]


def current_section(text: str) -> str | None:
    """The marked region of ``text``, markers included, or None when it has none."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def _config_cmd(args: argparse.Namespace) -> int:
    if args.write is None:
        print(table(), end="")
        return 0
    path = Path(args.write)
    path.write_text(replace_section(path.read_text()))
    print(f"relay: configuration table written to {path}")
    return 0


def register(sub: Any) -> None:
    config = sub.add_parser(
        "config",
        help="print every setting as a Markdown table",
        description="Print every setting (environment variable, default, description) as a "
        "Markdown table. Each may also be set as RELAY_<NAME>_FILE (a file holding the value) or "
        "in the file named by RELAY_CONFIG.",
    )
    config.add_argument(
        "--write",
        metavar="FILE",
        help="replace the table between the relay config markers in FILE (e.g. README.md)",
    )
    config.set_defaults(handler=_config_cmd)
