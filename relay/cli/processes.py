"""``relay run``, ``relay serve``, ``relay work``: the long-running processes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import structlog

from relay.cli.check_rules import PLAIN_SECRETS
from relay.cli.common import CliError, load_settings, run_async
from relay.runtime import serve_until_signalled
from relay.settings import Settings

DEMO = {
    "callfire_secrets": "demo-secret",
    "api_credentials": "demo:demo",
    "egress_allow": "127.0.0.0/8,::1/128",
}


log = structlog.get_logger("relay")


def _warn_plain_secrets(settings: Settings) -> None:
    if not settings.secret_keys:
        log.warning(PLAIN_SECRETS)


def _require_secrets(settings: Settings) -> None:
    if not settings.callfire_secrets and not settings.allow_unsigned:
        raise CliError(
            "no CallFire secret configured: set RELAY_CALLFIRE_SECRETS "
            "(or RELAY_ALLOW_UNSIGNED=true to accept unsigned callbacks)"
        )


def _demo_overrides() -> dict[str, Any]:
    """Demo values for whatever the environment leaves unset, announced on stdout."""
    chosen = {k: v for k, v in DEMO.items() if not os.environ.get(Settings.env_name(k))}
    if chosen:
        print("relay: demo mode, for trying it out only:", file=sys.stderr)
        for key, value in chosen.items():
            print(f"  {Settings.env_name(key)}={value}", file=sys.stderr)
    return chosen


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(**(_demo_overrides() if args.demo else {}))
    _require_secrets(settings)
    _warn_plain_secrets(settings)
    workers = max(1, settings.workers)
    return run_async(
        lambda: serve_until_signalled(settings, listener=True, api=True, workers=workers, role="run")
    )


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    _require_secrets(settings)
    _warn_plain_secrets(settings)
    return run_async(
        lambda: serve_until_signalled(
            settings, listener=True, api=True, workers=0, role="serve", reuse_port=args.reuse_port
        )
    )


def _work(_: argparse.Namespace) -> int:
    settings = load_settings()
    _warn_plain_secrets(settings)
    workers = max(1, settings.workers)
    return run_async(
        lambda: serve_until_signalled(settings, listener=False, api=False, workers=workers, role="work")
    )


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="listener, API and workers in one process",
        description="Run the listener, the Webhooks API and the delivery workers in one process. "
        "Without RELAY_REDIS_URL an embedded Redis is started under RELAY_DATA_DIR.",
    )
    run.add_argument(
        "--demo",
        action="store_true",
        help="fill unset secrets, API credentials and egress with demo values (never in production)",
    )
    run.set_defaults(handler=_run)
    serve = sub.add_parser(
        "serve",
        help="the HTTP side: callbacks listener and Webhooks API",
        description="Serve POST /callbacks/callfire, the /v2 Webhooks API, health and metrics.",
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT: several `relay serve` processes on one host share RELAY_PORT "
        "(and RELAY_ADMIN_PORT), the kernel spreading connections between them",
    )
    serve.set_defaults(handler=_serve)
    work = sub.add_parser(
        "work",
        help="delivery workers only",
        description="Deliver events to webhooks. Serves /healthz, /readyz and /metrics on RELAY_PORT "
        "(/metrics on RELAY_ADMIN_PORT when set).",
    )
    work.set_defaults(handler=_work)
