"""List and replay the workflow queue's dead letters.

    uv run python -m workflow.deadletters list [--limit N] [--json]
    uv run python -m workflow.deadletters replay ID [ID ...]
    uv run python -m workflow.deadletters replay --all [--limit N]

Settings come from the same ``WORKFLOW_*`` variables as the consumer (``WORKFLOW_QUEUE__*``,
``WORKFLOW_REDIS__URL``). ``list`` prints the oldest dead letters first: id (what ``replay``
takes), message id, operation, delivery id, reason, description, delivery count and when it was
dead-lettered. ``replay`` puts the chosen messages back on the queue with a fresh delivery count;
``--all`` replays the dead letters present when the command starts (at most ``--limit``), so a
message that fails again is not replayed twice by one command. Exit status: 0, or 1 when an id
given to ``replay`` was not found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any, TextIO

from dronecommon import load_settings
from dronecommon.auth.credentials import credential_for
from dronecommon.cli import environment_help
from dronecommon.messaging import DeadLetterStore, create_dead_letter_store

from .queueview import summary
from .runtime import queue_redis_client
from .settings import WorkflowSettings


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        out.write("no dead letters\n")
        return
    for row in rows:
        out.write(
            f"{row['id']}  {row['deadLetteredAt'] or '-'}  {row['operation'] or '-'}"
            f"  delivery={row['deliveryId'] or '-'}  message={row['messageId']}"
            f"  deliveries={row['deliveryCount']}\n"
            f"    {row['reason']}: {row['description']}\n"
        )
    out.write(f"{len(rows)} dead letter{'s' if len(rows) != 1 else ''}\n")


async def run(args: argparse.Namespace, store: DeadLetterStore, out: TextIO) -> int:
    if args.command == "list":
        rows = [summary(letter) for letter in await store.list(args.limit)]
        if args.json:
            out.write(json.dumps(rows, indent=2) + "\n")
        else:
            _print_table(rows, out)
        return 0
    ids: list[str] = (
        [letter.id for letter in await store.list(args.limit)] if args.all else list(args.ids)
    )
    replayed = await store.replay(ids) if ids else []
    for entry in replayed:
        out.write(f"replayed {entry}\n")
    missing = [i for i in ids if i not in set(replayed)]
    for entry in missing:
        out.write(f"not found: {entry}\n")
    out.write(f"{len(replayed)} replayed\n")
    return 1 if missing and not args.all else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m workflow.deadletters",
        description="List and replay the workflow queue's dead letters.",
        epilog="environment variables (the consumer's; default shown):\n"
        + environment_help(WorkflowSettings, sections=("queue", "redis")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show the oldest dead letters")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    replay = commands.add_parser("replay", help="put dead letters back on the queue")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids from `list`")
    replay.add_argument("--all", action="store_true", help="replay every current dead letter")
    replay.add_argument("--limit", type=int, default=10000, help="with --all: at most this many")
    return root


async def _main(args: argparse.Namespace) -> int:
    settings = load_settings(WorkflowSettings)
    queue = settings.queue
    async with AsyncExitStack() as stack:
        # The queue's own clients, signed in as the consumer's are.
        credential = await stack.enter_async_context(
            credential_for(
                queue=queue, redis=settings.redis if queue.transport == "redis" else None
            )
        )
        redis = queue_redis_client(settings, credential)
        if redis is not None:
            stack.push_async_callback(redis.aclose)
        store = create_dead_letter_store(queue, redis=redis, credential=credential)
        stack.push_async_callback(store.close)
        return await run(args, store, sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "replay" and not args.all and not args.ids:
        parser().error("replay needs dead-letter ids or --all")
    if args.command == "replay" and args.all and args.ids:
        parser().error("give ids or --all, not both")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
