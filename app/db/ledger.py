"""The credit ledger: append-only entries and a cached balance that debits cannot overdraw."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db.models import Job, LedgerEntry, Workspace

logger = logging.getLogger(__name__)

MAX_CHANGE = 1_000_000_000
"""Largest number of credits one grant or revoke may move."""
MAX_BALANCE = 1_000_000_000_000
"""Largest balance a workspace may hold; far below the 64-bit limit of the column."""

JOB_DEBIT = "job_debit"
JOB_REFUND = "job_refund"
GRANT = "grant"
REVOKE = "revoke"
OPENING_BALANCE = "opening_balance"


class BalanceLimitExceeded(Exception):
    """A grant would take the balance past ``MAX_BALANCE``."""


class InsufficientCredits(Exception):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"balance {balance} is below the cost {cost}")
        self.balance = balance
        self.cost = cost


async def _move(
    session: AsyncSession,
    workspace_id: str,
    amount: int,
    reason: str,
    job_id: str | None = None,
    note: str | None = None,
) -> LedgerEntry:
    """Add ``amount`` to the balance and record the entry, in the caller's transaction.

    A negative amount succeeds only while the balance covers it: the condition sits in the
    UPDATE itself, so two transactions cannot both spend the last credits.
    """
    statement = (
        update(Workspace)
        .where(col(Workspace.id) == workspace_id)
        .values(balance=Workspace.balance + amount)
        .returning(col(Workspace.balance))
    )
    if amount < 0:
        statement = statement.where(col(Workspace.balance) >= -amount)
    else:
        statement = statement.where(col(Workspace.balance) <= MAX_BALANCE - amount)
    balance_after = (await session.exec(statement)).scalar_one_or_none()
    if balance_after is None:
        workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            raise LookupError(f"workspace {workspace_id} not found")
        if amount >= 0:
            raise BalanceLimitExceeded(
                f"the balance {workspace.balance} plus {amount} would exceed {MAX_BALANCE}"
            )
        raise InsufficientCredits(workspace.balance, -amount)
    entry = LedgerEntry(
        workspace_id=workspace_id,
        job_id=job_id,
        reason=reason,
        amount=amount,
        balance_after=balance_after,
        note=note,
    )
    session.add(entry)
    await session.flush()
    return entry


async def debit_job(session: AsyncSession, job: Job) -> None:
    """Charge a new job its cost, in the transaction that inserts the job."""
    await _move(session, job.workspace_id, -job.cost_units, JOB_DEBIT, job.id)
    job.credits_charged = job.cost_units


async def refund_job(session: AsyncSession, job_id: str, amount: int, note: str) -> bool:
    """Refund a job once; returns False when it was refunded before. Commits."""
    job = await session.get(Job, job_id)
    if job is None or amount <= 0:
        return False
    try:
        await _move(session, job.workspace_id, amount, JOB_REFUND, job_id, note)
        job.credits_refunded = amount
        session.add(job)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        logger.info("Refund already recorded", extra={"job_id": job_id})
        return False
    logger.info("Job refunded", extra={"job_id": job_id, "credits": amount})
    return True


async def adjust(
    session: AsyncSession, workspace_id: str, amount: int, reason: str, note: str | None
) -> LedgerEntry:
    """Grant (positive) or revoke (negative) credits outside any job. Commits.

    Raises ValueError for 0 or a change larger than ``MAX_CHANGE``.
    """
    if amount == 0 or abs(amount) > MAX_CHANGE:
        raise ValueError(f"the amount must be a whole number from 1 to {MAX_CHANGE}")
    entry = await _move(session, workspace_id, amount, reason, note=note)
    await session.commit()
    return entry


async def entries(
    session: AsyncSession, workspace_id: str, limit: int, before_id: int | None = None
) -> list[LedgerEntry]:
    """Return the newest entries first, older than ``before_id`` when it is given."""
    statement = select(LedgerEntry).where(LedgerEntry.workspace_id == workspace_id)
    if before_id is not None:
        statement = statement.where(col(LedgerEntry.id) < before_id)
    statement = statement.order_by(col(LedgerEntry.id).desc()).limit(limit)
    return list((await session.exec(statement)).all())


def refund_amount(status: str, canceled_while: str | None, charged: int) -> int:
    """Credits to give back for a job that ended ``status``.

    Failed jobs and jobs canceled while queued get everything back; a job canceled while
    running keeps one credit for the work started.
    """
    if status == "failed":
        return charged
    if status == "canceled":
        return charged if canceled_while == "queued" else max(charged - 1, 0)
    return 0
