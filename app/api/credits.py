"""Route of ``/v1/credits``: the workspace's balance and ledger."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import Principal, SessionDep, require_scope
from app.api.errors import ApiError
from app.api.schemas import CreditsPublic, LedgerEntryPublic
from app.db import ledger
from app.db.models import Workspace, as_utc

router = APIRouter(prefix="/v1/credits", tags=["billing"])
# Ledger entry ids: ASCII digits that fit a 64-bit integer column.
_CURSOR = re.compile(r"[0-9]{1,18}")
BillingReader = Annotated[Principal, Depends(require_scope("billing:read"))]


@router.get("", response_model=CreditsPublic, response_model_by_alias=True)
async def get_credits(
    principal: BillingReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> CreditsPublic:
    """Return the balance and the ledger entries, newest first."""
    before_id = None
    if cursor is not None:
        if not _CURSOR.fullmatch(cursor):
            raise ApiError(
                "invalid_request", "The cursor is invalid. Pass nextCursor from the previous page."
            )
        before_id = int(cursor)
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None
    rows = await ledger.entries(session, principal.workspace_id, limit + 1, before_id)
    page = rows[:limit]
    return CreditsPublic(
        workspace_id=workspace.id,
        plan=workspace.plan,
        balance=workspace.balance,
        data=[
            LedgerEntryPublic(
                id=entry.id or 0,
                amount=entry.amount,
                reason=entry.reason,
                job_id=entry.job_id,
                balance_after=entry.balance_after,
                note=entry.note,
                created_at=as_utc(entry.created_at) or entry.created_at,
            )
            for entry in page
        ],
        next_cursor=str(page[-1].id) if len(rows) > limit and page[-1].id else None,
    )
