"""``relay secrets new-key|reencrypt``: the keys that seal webhook secrets at rest.

``reencrypt`` rewrites every stored secret sealed under the first key of ``RELAY_SECRET_KEYS``
(a plain-text one is sealed, one under another key re-encrypted); it runs beside a live relay, each
rewrite a compare-and-set like any other write. Rotation: docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from cryptography.fernet import Fernet

from relay.cli.common import CliError, on_redis
from relay.cli.progress import Progress
from relay.cli.webhooks import store_of
from relay.store.webhooks import Resealed, WebhookStore


def summary(counts: Counter[Resealed]) -> str:
    """The count line ``reencrypt`` ends with. Pure."""
    line = (
        f"{counts['resealed']} secret(s) re-encrypted under the first key, "
        f"{counts['current']} already were (or have no secret)"
    )
    if counts["unreadable"]:
        line += f", {counts['unreadable']} unreadable"
    return line


async def _reencrypt(store: WebhookStore, args: argparse.Namespace) -> int:
    if not store.secret_keys:
        raise CliError("RELAY_SECRET_KEYS is not set: there is no key to encrypt with")
    _, table = await store.snapshot()
    progress = Progress(len(table), "re-encrypting", sys.stderr, shown=sys.stderr.isatty())
    counts: Counter[Resealed] = Counter()
    unreadable: list[int] = []
    for webhook_id in sorted(table):
        outcome = await store.reseal(webhook_id)
        counts[outcome] += 1
        if outcome == "unreadable":
            unreadable.append(webhook_id)
        progress.step()
    progress.finish()
    print(summary(counts))
    if unreadable:
        shown = ", ".join(map(str, unreadable[:20])) + (" ..." if len(unreadable) > 20 else "")
        raise CliError(
            f"no key of RELAY_SECRET_KEYS opens the secret of webhook(s) {shown}: keep the key "
            "that sealed them in RELAY_SECRET_KEYS, or set their secrets again"
        )
    return 0


def _new_key(_: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode())
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "secrets",
        help="make a key, or re-encrypt webhook secrets under the first key",
        description="The keys of RELAY_SECRET_KEYS, which seal webhook secrets in Redis.",
    )
    commands = parser.add_subparsers(dest="secrets_command", required=True, metavar="COMMAND")
    new_key = commands.add_parser(
        "new-key",
        help="print a fresh key for RELAY_SECRET_KEYS",
        description="Print a fresh Fernet key (from the OS's random source) for RELAY_SECRET_KEYS.",
    )
    new_key.set_defaults(handler=_new_key)
    reencrypt = commands.add_parser(
        "reencrypt",
        help="rewrite every stored secret under the first key",
        description="Rewrite every webhook secret in Redis sealed under the first key of "
        "RELAY_SECRET_KEYS (step 3 of a rotation: docs/operations.md). Safe beside a running "
        "relay. Exit 1 when some secret is sealed under no configured key.",
    )
    reencrypt.set_defaults(handler=on_redis(store_of, _reencrypt))
