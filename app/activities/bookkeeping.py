"""Job index writes and storage housekeeping."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from temporalio import activity

from app.db import ledger
from app.db.accounts import PLANS
from app.db.models import Job, Workspace
from app.db.session import Database
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import (
    DeleteObjectsRequest,
    JobStateUpdate,
    JobStatus,
    ObjectExistsRequest,
)

logger = logging.getLogger(__name__)

_STATE_FIELDS = (
    "progress",
    "attempt",
    "started_at",
    "finished_at",
    "deadline_at",
    "output",
    "error",
)


class BookkeepingActivities:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store

    @activity.defn(name=names.RECORD_JOB_STATE)
    async def record_job_state(self, change: JobStateUpdate) -> bool:
        """Write one state change to the job index; an older or repeated change is ignored.

        Returns False only for a change with ``claim_run_slot`` that found the workspace's
        running jobs at its plan's cap: the job stays queued and the workflow tries again.
        """
        values: dict[str, Any] = {
            "status": change.status.value,
            "state_version": change.state_version,
        }
        for field in _STATE_FIELDS:
            value = getattr(change, field)
            if value is not None:
                values[field] = value
        statement = (
            update(Job)
            .where(col(Job.id) == change.job_id)
            .where(col(Job.state_version) < change.state_version)
            .values(**values)
        )
        if change.status in (JobStatus.FAILED, JobStatus.CANCELED):
            # The refund is written first, so that a reader who finds the job failed or
            # canceled also finds its refund. A repeated change cannot refund twice.
            await self._refund(change)

        # Core statements on a plain connection: the ORM session adds nothing to one UPDATE.
        async with self.db.engine.begin() as connection:
            if change.claim_run_slot:
                statement = await self._below_run_cap(connection, change.job_id, statement)
            result = await connection.execute(statement)
            if change.claim_run_slot and result.rowcount == 0:
                return await self._already_applied(connection, change)
        return True

    async def _below_run_cap(
        self, connection: AsyncConnection, job_id: str, statement: Update
    ) -> Update:
        """Make the update apply only while the workspace runs fewer jobs than its plan allows.

        The count is a subquery of the UPDATE itself, so SQLite, whose writers take turns,
        cannot let two jobs take the last slot. PostgreSQL also locks the workspace row first,
        because there two concurrent UPDATEs would each count the other's job as not running.
        """
        row = (
            await connection.execute(
                select(col(Job.workspace_id), col(Workspace.plan))
                .join(Workspace, col(Workspace.id) == col(Job.workspace_id))
                .where(col(Job.id) == job_id)
            )
        ).first()
        if row is None:
            return statement
        workspace_id, plan = row
        if connection.dialect.name == "postgresql":
            await connection.execute(
                select(col(Workspace.id)).where(col(Workspace.id) == workspace_id).with_for_update()
            )
        running = (
            select(func.count())
            .select_from(Job)
            .where(col(Job.workspace_id) == workspace_id)
            .where(col(Job.status) == JobStatus.RUNNING.value)
            .scalar_subquery()
        )
        cap = PLANS.get(plan, PLANS["standard"]).max_running_jobs
        return statement.where(running < cap)

    async def _already_applied(self, connection: AsyncConnection, change: JobStateUpdate) -> bool:
        """Tell a repeated write (True) from a claim refused at the cap (False)."""
        version = (
            await connection.execute(
                select(col(Job.state_version)).where(col(Job.id) == change.job_id)
            )
        ).scalar_one_or_none()
        if version is None or version >= change.state_version:
            return True
        activity.logger.info("Job waits for a run slot", extra={"job_id": change.job_id})
        return False

    async def _refund(self, change: JobStateUpdate) -> None:
        """Refund a failed or canceled job; a retry of this activity cannot refund twice."""
        canceled_while = (change.error or {}).get("canceledWhile")
        async with self.db.session() as session:
            job = await session.get(Job, change.job_id)
            if job is None:
                return
            amount = ledger.refund_amount(change.status.value, canceled_while, job.credits_charged)
            note = f"{change.status.value} job" + (
                f" (while {canceled_while})" if canceled_while else ""
            )
            await ledger.refund_job(session, change.job_id, amount, note)

    @activity.defn(name=names.OBJECT_EXISTS)
    async def object_exists(self, request: ObjectExistsRequest) -> bool:
        return await self.store.size(request.object_key) is not None

    @activity.defn(name=names.DELETE_OBJECTS)
    async def delete_objects(self, request: DeleteObjectsRequest) -> None:
        for key in request.object_keys:
            await self.store.delete(key)
        activity.logger.info(
            "Deleted job objects",
            extra={"job_id": request.job_id, "count": len(request.object_keys)},
        )
