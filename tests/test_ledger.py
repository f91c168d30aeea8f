"""The ledger against the real database: no overdraft and no double refund under concurrency."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func
from sqlmodel import select

from app.db import accounts, ledger
from app.db.models import Job, LedgerEntry, Workspace
from app.db.session import Database


async def new_workspace(db: Database, balance: int) -> str:
    async with db.session() as session:
        workspace = await accounts.create_workspace(session, "ledger")
        if balance:
            await ledger.adjust(session, workspace.id, balance, ledger.OPENING_BALANCE, None)
        return workspace.id


async def charged_job(db: Database, workspace_id: str) -> str:
    job_id = f"job_{uuid.uuid4().hex[:24]}"
    async with db.session() as session:
        job = Job(
            id=job_id,
            workspace_id=workspace_id,
            tool_slug="image-compress-api",
            status="failed",
            request_hash="test",
            input_kind="file",
            max_attempts=1,
            deadline_seconds=60,
            cost_units=3,
        )
        session.add(job)
        await session.flush()
        await ledger.debit_job(session, job)
        await session.commit()
    return job_id


async def state(db: Database, workspace_id: str) -> tuple[int, int]:
    """The cached balance and the sum of the ledger entries."""
    async with db.session() as session:
        workspace = await session.get(Workspace, workspace_id)
        assert workspace is not None
        total = (
            await session.exec(
                select(func.sum(LedgerEntry.amount)).where(LedgerEntry.workspace_id == workspace_id)
            )
        ).one()
        return workspace.balance, int(total or 0)


async def test_concurrent_debits_never_overdraw(db: Database) -> None:
    workspace_id = await new_workspace(db, balance=10)

    async def debit() -> bool:
        try:
            await charged_job(db, workspace_id)
        except ledger.InsufficientCredits:
            return False
        return True

    results = await asyncio.gather(*(debit() for _ in range(8)))
    assert results.count(True) == 3
    assert await state(db, workspace_id) == (1, 1)


async def test_refund_racing_refund_applies_once(db: Database) -> None:
    workspace_id = await new_workspace(db, balance=10)
    job_id = await charged_job(db, workspace_id)

    async def refund(note: str) -> bool:
        async with db.session() as session:
            return await ledger.refund_job(session, job_id, 3, note)

    # A cancel and a failure that both try to refund the same job.
    results = await asyncio.gather(refund("canceled job"), refund("failed job"), refund("retry"))
    assert sorted(results) == [False, False, True]
    assert await state(db, workspace_id) == (10, 10)
    async with db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert job.credits_charged == 3
        assert job.credits_refunded == 3


def test_refund_amounts() -> None:
    assert ledger.refund_amount("failed", None, 3) == 3
    assert ledger.refund_amount("canceled", "queued", 3) == 3
    assert ledger.refund_amount("canceled", "running", 3) == 2
    assert ledger.refund_amount("canceled", "running", 1) == 0
    assert ledger.refund_amount("succeeded", None, 3) == 0


async def test_revoke_cannot_go_below_zero(db: Database) -> None:
    workspace_id = await new_workspace(db, balance=2)
    async with db.session() as session:
        try:
            await ledger.adjust(session, workspace_id, -5, ledger.REVOKE, "too much")
        except ledger.InsufficientCredits as err:
            assert err.balance == 2
            assert err.cost == 5
        else:
            raise AssertionError("revoking more than the balance succeeded")
    assert await state(db, workspace_id) == (2, 2)


async def test_balance_beyond_32_bits_and_its_ceiling(db: Database) -> None:
    workspace_id = await new_workspace(db, balance=0)
    async with db.session() as session:
        for _ in range(3):
            await ledger.adjust(session, workspace_id, ledger.MAX_CHANGE, ledger.GRANT, "large")
    assert await state(db, workspace_id) == (3 * ledger.MAX_CHANGE, 3 * ledger.MAX_CHANGE)

    async with db.session() as session:
        for _ in range(ledger.MAX_BALANCE // ledger.MAX_CHANGE - 3):
            await ledger.adjust(session, workspace_id, ledger.MAX_CHANGE, ledger.GRANT, None)
        try:
            await ledger.adjust(session, workspace_id, 1, ledger.GRANT, "one too many")
        except ledger.BalanceLimitExceeded:
            pass
        else:
            raise AssertionError("a grant past the maximum balance succeeded")
    assert await state(db, workspace_id) == (ledger.MAX_BALANCE, ledger.MAX_BALANCE)
