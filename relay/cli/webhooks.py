"""``relay webhooks list|show|create|delete``: the subscriptions, straight from Redis.

For operators at a shell; validation is the API's own. Secrets are read from a file (or stdin),
never from the command line (where ``ps`` shows them), and never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from relay.api.http import describe
from relay.api.schemas import MAX_LIMIT
from relay.cli.common import CliError, on_redis, whole_number
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook, WebhookBody, merged
from relay.webhooks.query import WebhookQuery


def list_line(webhook: Webhook) -> str:
    """``id  on/off  resource  events  name  callback``, one webhook per line. Pure."""
    state = "on " if webhook.enabled else "off"
    events = ",".join(webhook.events)
    name = webhook.name or "-"
    return f"{webhook.id:>6}  {state}  {webhook.resource:<14}  {events:<18}  {name}  {webhook.callback}"


async def _list(store: WebhookStore, args: argparse.Namespace) -> int:
    query = WebhookQuery(
        name=args.name,
        resource=args.resource,
        event=args.event,
        callback=args.callback,
        enabled=args.enabled,
        offset=args.offset,
        limit=args.limit,
    )
    total, page = await store.find(query)
    for webhook in page:
        print(orjson.dumps(webhook.out()).decode() if args.json else list_line(webhook))
    if not args.json:
        print(f"{len(page)} shown, {total} matching", file=sys.stderr)
    return 0


async def _show(store: WebhookStore, args: argparse.Namespace) -> int:
    webhook = await store.get(args.id)
    if webhook is None:
        raise CliError(f"no webhook with id {args.id}")
    record = {**webhook.out(), "secret": "(set)" if webhook.secret is not None else "(none)"}
    print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    return 0


def read_secret(source: str) -> str:
    """The secret in a file, or on stdin for ``-``; surrounding whitespace stripped."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"--secret-file: cannot read {source}: {exc.strerror}") from None
    if not text.strip():
        raise CliError(f"--secret-file: {source} is empty")
    return text.strip()


def body_of(args: argparse.Namespace) -> WebhookBody:
    """The create arguments as an API body; CliError naming the option when one is invalid."""
    values: dict[str, Any] = {
        "name": args.name,
        "resource": args.resource,
        "events": args.event,
        "callback": args.callback,
        "enabled": not args.disabled,
        "singleUse": args.single_use,
        "nonStrictSsl": args.non_strict_ssl,
        "fields": args.fields,
        "expiresAt": args.expires_at,
    }
    if args.secret_file is not None:
        values["secret"] = read_secret(args.secret_file)
    if args.filter is not None:
        try:
            values["filter"] = json.loads(args.filter)
        except ValueError:
            raise CliError("--filter: is not valid JSON") from None
    try:
        return WebhookBody.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise CliError(describe(exc, "arguments")) from None


async def _create(store: WebhookStore, args: argparse.Namespace) -> int:
    now_ms = int(time.time() * 1000)
    try:
        spec = merged(None, body_of(args), now_ms)
    except ValidationError as exc:
        raise CliError(describe(exc, "arguments")) from None
    webhook = await store.create(spec, now_ms)
    print(webhook.id)
    return 0


async def _delete(store: WebhookStore, args: argparse.Namespace) -> int:
    if not await store.delete(args.id):
        raise CliError(f"no webhook with id {args.id}")
    print(f"deleted webhook {args.id}", file=sys.stderr)
    return 0


Action = Callable[[WebhookStore, argparse.Namespace], Awaitable[int]]


def store_of(redis: RedisClient, keys: Keys, settings: Settings) -> WebhookStore:
    """The webhook store, sealing secrets with the settings' keys."""
    return WebhookStore(redis, keys, secret_keys=settings.secret_keys)


def _command(action: Action) -> Callable[[argparse.Namespace], int]:
    return on_redis(store_of, action)


def _add_list(commands: Any) -> None:
    ls = commands.add_parser(
        "list",
        help="id, state, resource, events, name and callback of each",
        description="Webhooks by id, filtered as GET /v2/webhooks filters them.",
    )
    ls.add_argument("--name", help="this exact name")
    ls.add_argument("--resource", help="this resource, e.g. OutboundCall")
    ls.add_argument("--event", help="watching this event (any case)")
    ls.add_argument("--callback", help="this exact callback URL")
    state = ls.add_mutually_exclusive_group()
    state.add_argument("--enabled", action="store_const", const=True, help="only enabled ones")
    state.add_argument(
        "--disabled", dest="enabled", action="store_const", const=False, help="only disabled ones"
    )
    ls.add_argument("--offset", type=whole_number(0), default=0, help="skip this many (default 0)")
    ls.add_argument(
        "-n",
        "--limit",
        type=whole_number(0, MAX_LIMIT),
        default=100,
        help=f"at most this many (default 100, max {MAX_LIMIT})",
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line, as the API returns them")
    ls.set_defaults(handler=_command(_list))


def _add_create(commands: Any) -> None:
    create = commands.add_parser(
        "create",
        help="create a webhook; prints its id",
        description="Create a webhook, validated as POST /v2/webhooks validates it; prints its id.",
    )
    create.add_argument("--resource", required=True, help="the resource watched, e.g. OutboundCall")
    create.add_argument(
        "--event", action="append", required=True, help="an event to deliver (repeat for several)"
    )
    create.add_argument("--callback", required=True, help="absolute http(s) URL receiving the POSTs")
    create.add_argument("--name", help="a name")
    create.add_argument("--secret-file", help="file holding the signing secret ('-': read stdin)")
    create.add_argument("--fields", help="trim callback bodies to this selector")
    create.add_argument(
        "--filter",
        help='JSON: deliver only the events it holds for, e.g. \'{"resource.finalCallResult": "LA"}\'',
    )
    create.add_argument("--expires-at", type=int, help="unix ms after which it no longer fires")
    create.add_argument("--single-use", action="store_true", help="fire once, then delete it")
    create.add_argument("--non-strict-ssl", action="store_true", help="do not verify the callback's TLS")
    create.add_argument("--disabled", action="store_true", help="create it switched off")
    create.set_defaults(handler=_command(_create))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "webhooks",
        help="list, show, create or delete webhooks",
        description="The webhooks (subscriptions), read and written in Redis directly.",
    )
    commands = parser.add_subparsers(dest="webhooks_command", required=True, metavar="COMMAND")
    _add_list(commands)
    show = commands.add_parser(
        "show", help="one webhook in full (its secret never)", description="One webhook as JSON."
    )
    show.add_argument("id", type=int, help="the webhook's id")
    show.set_defaults(handler=_command(_show))
    _add_create(commands)
    delete = commands.add_parser("delete", help="delete a webhook", description="Delete a webhook.")
    delete.add_argument("id", type=int, help="the webhook's id")
    delete.set_defaults(handler=_command(_delete))
