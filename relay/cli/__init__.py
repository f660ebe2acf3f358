"""The ``relay`` command. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from relay import __version__
from relay.cli import check, config, deadletters, events, processes, receive, secrets, webhooks
from relay.cli.common import CliError
from relay.settings import ENV_PREFIX, Settings
from relay.settings_sources import ConfigError

MODULES = (processes, events, check, config, deadletters, webhooks, secrets, receive)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="Receive signed CallFire callbacks, keep them on Redis streams, deliver them "
        "to subscribed webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return parser


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = err["loc"][0] if err["loc"] else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        if loc:
            parts.append(f"{Settings.env_name(str(loc))}: {message}")
        else:  # a check of several settings together: its message names them
            parts.append(message if message.startswith(ENV_PREFIX) else f"settings: {message}")
    return "invalid configuration: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
    except ValidationError as exc:
        print(f"relay: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    except (CliError, ValueError, OSError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"relay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code
