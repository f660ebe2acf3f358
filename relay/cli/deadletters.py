"""``relay dead-letters list|show|replay|purge``: the deliveries given up on, and poison entries.

A replay puts a letter's delivery back on its partition's deliveries stream as a first attempt
(the whole retry schedule again) and removes the letter; poison entries cannot be replayed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from relay.cli.common import CliError, on_redis, whole_number
from relay.cli.progress import Progress
from relay.store.dead_letters import BATCH, KINDS, DeadLetter, DeadLetters, LetterQuery


def last_of(letter: DeadLetter) -> str:
    if letter.last_status is not None:
        return str(letter.last_status)
    return letter.last_error or "-"


def list_line(letter: DeadLetter) -> str:
    """``id  webhook  kind  last status  reason``, one letter per line. Pure."""
    webhook = "-" if letter.webhook_id is None else str(letter.webhook_id)
    return f"{letter.id}  {webhook:>8}  {letter.kind:<9}  {last_of(letter):>5}  {letter.reason}"


async def _chosen(letters: DeadLetters, args: argparse.Namespace) -> list[DeadLetter]:
    if args.ids:
        found = await letters.get_many(args.ids)
        missing = [i for i, letter in zip(args.ids, found, strict=True) if letter is None]
        if missing:
            raise CliError(f"no such dead letter: {', '.join(missing)}")
        return [letter for letter in found if letter is not None]
    if args.webhook is None and not args.all:
        raise CliError("name dead letters by id, or give --webhook ID or --all")
    return [letter async for letter in letters.scan(LetterQuery(webhook_id=args.webhook))]


async def _list(letters: DeadLetters, args: argparse.Namespace) -> int:
    query = LetterQuery(webhook_id=args.webhook, kind=args.kind)
    total, page = await letters.find(query, 0, args.limit)
    for letter in page:
        print(orjson.dumps(letter.summary()).decode() if args.json else list_line(letter))
    if not args.json:
        print(f"{len(page)} shown, {total} dead letters in all", file=sys.stderr)
    return 0


async def _show(letters: DeadLetters, args: argparse.Namespace) -> int:
    letter = await letters.get(args.id)
    if letter is None:
        raise CliError(f"no such dead letter: {args.id}")
    print(orjson.dumps(letter.detail(), option=orjson.OPT_INDENT_2).decode())
    return 0


async def _replay(letters: DeadLetters, args: argparse.Namespace) -> int:
    chosen = await _chosen(letters, args)
    progress = Progress(len(chosen), "replaying", sys.stderr)
    replayed = skipped = 0
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        done, passed = await letters.replay(batch)
        replayed, skipped = replayed + done, skipped + len(passed)
        for _ in batch:
            progress.step()
    progress.finish()
    note = f" ({skipped} poison entries cannot be replayed, kept)" if skipped else ""
    print(f"replayed {replayed} dead letters{note}")
    return 0


async def _purge(letters: DeadLetters, args: argparse.Namespace) -> int:
    chosen = await _chosen(letters, args)
    progress = Progress(len(chosen), "purging", sys.stderr)
    purged = 0
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        purged += await letters.delete([letter.id for letter in batch])
        for _ in batch:
            progress.step()
    progress.finish()
    print(f"purged {purged} dead letters")
    return 0


Action = Callable[[DeadLetters, argparse.Namespace], Awaitable[int]]


def _command(action: Action) -> Callable[[argparse.Namespace], int]:
    return on_redis(lambda redis, keys, _: DeadLetters(redis, keys), action)


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids")
    parser.add_argument("--webhook", type=int, help="every dead letter of this webhook id")
    parser.add_argument("--all", action="store_true", help="every dead letter")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dead-letters",
        help="list, show, replay or purge dead letters",
        description="Deliveries given up on, and poison entries. A replay delivers a letter "
        "again as a first attempt and removes it; poison entries cannot be replayed.",
    )
    commands = parser.add_subparsers(dest="dead_letters_command", required=True, metavar="COMMAND")
    ls = commands.add_parser("list", help="id, webhook id, kind, last status and reason, newest first")
    ls.add_argument("--webhook", type=int, help="only this webhook's")
    ls.add_argument("--kind", choices=KINDS, help="only letters of this kind")
    ls.add_argument(
        "-n", "--limit", type=whole_number(0), default=100, help="at most this many (default 100)"
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(handler=_command(_list))
    show = commands.add_parser("show", help="one dead letter in full, its event included")
    show.add_argument("id", help="the dead letter's id")
    show.set_defaults(handler=_command(_show))
    replay = commands.add_parser("replay", help="deliver again: by id, by webhook, or all")
    _selection(replay)
    replay.set_defaults(handler=_command(_replay))
    purge = commands.add_parser("purge", help="delete: by id, by webhook, or all")
    _selection(purge)
    purge.set_defaults(handler=_command(_purge))
