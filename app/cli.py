"""Administration: workspaces and API keys.

Run ``python -m app.cli --help``. Settings come from the same ``WORKLANE_`` variables as the
service, so the command works on the database the service uses.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import get_settings
from app.db import accounts, ledger
from app.db.accounts import PLANS
from app.db.migrate import upgrade_database
from app.db.models import Job, Workspace
from app.db.session import Database
from app.temporal import connect_checked, register_search_attributes

DEV_WORKSPACE_NAME = "development"
DEV_OPENING_BALANCE = 1_000_000
MAX_RATE = 100_000.0
"""Largest requests-per-second override a key may have."""
MAX_BURST = 1_000_000


async def _with_session(action: Callable[[AsyncSession], Awaitable[int]]) -> int:
    url = get_settings().resolved_database_url
    await upgrade_database(url)
    db = Database(url)
    try:
        async with db.session() as session:
            return await action(session)
    finally:
        await db.dispose()


def _print_key(created: accounts.CreatedKey) -> None:
    record = created.record
    print(f"key id:    {record.id}")
    print(f"workspace: {record.workspace_id}")
    print(f"scopes:    {record.scopes}")
    print(f"key:       {created.secret}")
    print("The key is shown only now; store it safely.")


async def _workspace_create(session: AsyncSession, args: argparse.Namespace) -> int:
    try:
        workspace = await accounts.create_workspace(session, args.name, plan=args.plan)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.balance:
        await ledger.adjust(session, workspace.id, args.balance, ledger.OPENING_BALANCE, None)
    print(workspace.id)
    return 0


async def _workspace_show(session: AsyncSession, args: argparse.Namespace) -> int:
    workspace = await session.get(Workspace, args.workspace)
    if workspace is None:
        print(f"error: workspace {args.workspace} not found", file=sys.stderr)
        return 2
    print(f"workspace: {workspace.id} ({workspace.name})")
    print(f"plan:      {workspace.plan}")
    print(f"balance:   {workspace.balance} credits")
    statement = (
        select(Job.status, func.count(), func.sum(Job.credits_charged - Job.credits_refunded))
        .where(Job.workspace_id == workspace.id)
        .group_by(Job.status)
    )
    for status, count, spent in (await session.exec(statement)).all():
        print(f"jobs {status + ':':<11}{count:>6}, {spent or 0} credits spent")
    return 0


async def _credits_change(session: AsyncSession, args: argparse.Namespace) -> int:
    amount = args.amount if args.action == "grant" else -args.amount
    reason = ledger.GRANT if args.action == "grant" else ledger.REVOKE
    try:
        entry = await ledger.adjust(session, args.workspace, amount, reason, args.reason)
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ledger.InsufficientCredits as err:
        print(
            f"error: cannot revoke {err.cost} credits from a balance of {err.balance}",
            file=sys.stderr,
        )
        return 2
    except ledger.BalanceLimitExceeded as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"balance: {entry.balance_after} credits")
    return 0


async def _migrate(_session: AsyncSession, _args: argparse.Namespace) -> int:
    # Opening the session already brought the schema to the newest revision.
    print("database schema is up to date")
    return 0


async def _setup(_session: AsyncSession, args: argparse.Namespace) -> int:
    # Opening the session already brought the schema to the newest revision.
    settings = get_settings()
    deadline = asyncio.get_running_loop().time() + args.wait
    while True:
        try:
            client = await connect_checked(settings)
            break
        except SystemExit as err:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            print(f"waiting for Temporal: {err}", file=sys.stderr)
            await asyncio.sleep(3)
    added = await register_search_attributes(client)
    print("database schema is up to date")
    print(
        f"search attributes in namespace '{settings.temporal_namespace}': "
        + (f"added {', '.join(added)}" if added else "already registered")
    )
    return 0


async def _workspace_list(session: AsyncSession, _args: argparse.Namespace) -> int:
    for workspace in await accounts.list_workspaces(session):
        print(f"{workspace.id}\t{workspace.name}\t{workspace.created_at.isoformat()}")
    return 0


async def _key_create(session: AsyncSession, args: argparse.Namespace) -> int:
    scopes = args.scopes.split(",") if args.scopes is not None else None
    try:
        created = await accounts.create_key(
            session, args.workspace, args.name, scopes, args.rate, args.burst
        )
    except (LookupError, accounts.UnknownScope) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_key(created)
    return 0


async def _key_list(session: AsyncSession, args: argparse.Namespace) -> int:
    print("key id\tworkspace\tprefix\tname\tscopes\trate\tburst\tstate")
    for key in await accounts.list_keys(session, args.workspace):
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        rate = f"{key.rate_per_second:g}" if key.rate_per_second else "plan"
        burst = str(key.rate_burst) if key.rate_burst else "plan"
        print(
            f"{key.id}\t{key.workspace_id}\t{key.prefix}...\t{key.name}\t{key.scopes}"
            f"\t{rate}\t{burst}\t{state}"
        )
    return 0


async def _workspace_set_plan(session: AsyncSession, args: argparse.Namespace) -> int:
    workspace = await session.get(Workspace, args.workspace)
    if workspace is None:
        print(f"error: workspace {args.workspace} not found", file=sys.stderr)
        return 2
    workspace.plan = args.plan
    session.add(workspace)
    await session.commit()
    print(f"{workspace.id} is on the {workspace.plan} plan")
    return 0


async def _key_revoke(session: AsyncSession, args: argparse.Namespace) -> int:
    try:
        key, changed = await accounts.revoke_key(session, args.key_id)
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"revoked {key.id}" if changed else f"{key.id} was already revoked")
    return 0


async def _dev_setup(session: AsyncSession, args: argparse.Namespace) -> int:
    """Create the development workspace and key once; later runs print the stored key."""
    key_file: Path = args.key_file
    if key_file.exists():
        secret = key_file.read_text().strip()
        if await accounts.find_active_key(session, secret) is not None:
            print(secret)
            return 0
    workspaces = [
        w for w in await accounts.list_workspaces(session) if w.name == DEV_WORKSPACE_NAME
    ]
    workspace = workspaces[0] if workspaces else None
    if workspace is None:
        # The scale plan's rate limit leaves room for the benchmark and for scripted trials.
        workspace = await accounts.create_workspace(session, DEV_WORKSPACE_NAME, plan="scale")
        await ledger.adjust(
            session, workspace.id, DEV_OPENING_BALANCE, ledger.OPENING_BALANCE, "development"
        )
    created = await accounts.create_key(session, workspace.id, "development")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(created.secret + "\n")
    print(created.secret)
    return 0


def _credits(text: str) -> int:
    """Parse a credit amount: a whole number from 1 to ledger.MAX_CHANGE."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= ledger.MAX_CHANGE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {ledger.MAX_CHANGE}"
        )
    return int(text)


def _opening_balance(text: str) -> int:
    return 0 if text == "0" else _credits(text)


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0 and at most {MAX_RATE}")
    return value


def _positive_burst(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_BURST:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_BURST}")
    return int(text)


def _reason(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the reason must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description="Manage workspaces and API keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    workspace = commands.add_parser("workspace", help="create or list workspaces")
    workspace_commands = workspace.add_subparsers(dest="action", required=True)
    create = workspace_commands.add_parser("create", help="create a workspace and print its id")
    create.add_argument("name")
    create.add_argument(
        "--plan",
        default="standard",
        choices=sorted(PLANS),
        help="plan: default request rate of the keys and jobs running at once",
    )
    create.add_argument(
        "--balance", type=_opening_balance, default=0, help="opening balance in credits"
    )
    create.set_defaults(handler=_workspace_create)
    show = workspace_commands.add_parser("show", help="show a workspace's balance and usage")
    show.add_argument("workspace", help="workspace id")
    show.set_defaults(handler=_workspace_show)
    set_plan = workspace_commands.add_parser("set-plan", help="move a workspace to another plan")
    set_plan.add_argument("workspace", help="workspace id")
    set_plan.add_argument("plan", choices=sorted(PLANS))
    set_plan.set_defaults(handler=_workspace_set_plan)
    workspace_commands.add_parser("list", help="list workspaces").set_defaults(
        handler=_workspace_list
    )

    key = commands.add_parser("key", help="create, list or revoke API keys")
    key_commands = key.add_subparsers(dest="action", required=True)
    key_create = key_commands.add_parser("create", help="create a key; it is printed once")
    key_create.add_argument("workspace", help="workspace id")
    key_create.add_argument("--name", default="api", help="label shown in listings")
    key_create.add_argument(
        "--scopes",
        help=f"comma-separated scopes (default: all of {','.join(accounts.ALL_SCOPES)})",
    )
    key_create.add_argument(
        "--rate", type=_positive_rate, help="requests per second for this key (default: the plan's)"
    )
    key_create.add_argument(
        "--burst", type=_positive_burst, help="burst size for this key (default: the plan's)"
    )
    key_create.set_defaults(handler=_key_create)
    key_list = key_commands.add_parser("list", help="list keys (never the secrets)")
    key_list.add_argument("--workspace", help="only this workspace's keys")
    key_list.set_defaults(handler=_key_list)
    key_revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(handler=_key_revoke)

    credits = commands.add_parser("credits", help="grant or revoke credits")
    credit_commands = credits.add_subparsers(dest="action", required=True)
    for action, text in (("grant", "add credits"), ("revoke", "take credits away")):
        change = credit_commands.add_parser(action, help=text)
        change.add_argument("workspace", help="workspace id")
        change.add_argument("amount", type=_credits, help="credits, a whole number above 0")
        change.add_argument("--reason", type=_reason, required=True, help="note kept in the ledger")
        change.set_defaults(handler=_credits_change)

    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        handler=_migrate
    )

    setup = commands.add_parser(
        "setup",
        help="bring the database schema up to date and register the job search attributes "
        "in Temporal; safe to run again",
    )
    setup.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds to keep retrying while Temporal or its namespace is not ready yet",
    )
    setup.set_defaults(handler=_setup)

    dev = commands.add_parser("dev-setup", help="ensure the development workspace and key")
    dev.add_argument(
        "--key-file", type=Path, required=True, help="where the development key is kept"
    )
    dev.set_defaults(handler=_dev_setup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(_with_session(lambda session: args.handler(session, args)))


if __name__ == "__main__":
    sys.exit(main())
