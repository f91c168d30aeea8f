"""Job index writes and storage housekeeping."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from temporalio import activity

from app.db import ledger
from app.db.models import Job
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
    async def record_job_state(self, change: JobStateUpdate) -> None:
        """Write one state change to the job index; an older or repeated change is ignored."""
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
            .where(Job.id == change.job_id)  # type: ignore[arg-type]
            .where(Job.state_version < change.state_version)  # type: ignore[arg-type]
            .values(**values)
        )
        # A Core statement on a plain connection: the ORM session adds nothing to one UPDATE.
        async with self.db.engine.begin() as connection:
            await connection.execute(statement)

        if change.status in (JobStatus.FAILED, JobStatus.CANCELED):
            await self._refund(change)

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
