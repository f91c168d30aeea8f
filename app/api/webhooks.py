"""Routes of webhook signing secrets and of a job's webhook delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter

from app.api.deps import JobsReader, JobsWriter, ServicesDep, SessionDep
from app.api.jobs import load_job
from app.api.schemas import WebhookDeliveryList, WebhookDeliveryPublic, WebhookSecretPublic
from app.db import webhooks
from app.db.models import as_utc, utcnow

router = APIRouter(tags=["webhooks"])


def _secret_view(signing: webhooks.SigningSecrets, now: datetime) -> WebhookSecretPublic:
    if signing.previous_valid_at(now):
        return WebhookSecretPublic(
            secret=signing.current,
            previous_secret=signing.previous,
            previous_secret_expires_at=signing.previous_expires_at,
        )
    return WebhookSecretPublic(
        secret=signing.current, previous_secret=None, previous_secret_expires_at=None
    )


@router.get("/v1/webhooks/secret", response_model=WebhookSecretPublic, response_model_by_alias=True)
async def get_webhook_secret(principal: JobsWriter, session: SessionDep) -> WebhookSecretPublic:
    """Return the workspace's webhook signing secret, creating it on the first call.

    During the grace period after a rotation, the previous secret and its expiry are
    returned too: deliveries carry a signature under each.
    """
    signing = await webhooks.get_signing_secrets(session, principal.workspace_id)
    return _secret_view(signing, utcnow())


@router.post(
    "/v1/webhooks/secret/rotate", response_model=WebhookSecretPublic, response_model_by_alias=True
)
async def rotate_webhook_secret(
    principal: JobsWriter, services: ServicesDep, session: SessionDep
) -> WebhookSecretPublic:
    """Replace the signing secret; the old one keeps signing for the grace period."""
    now = utcnow()
    grace = timedelta(seconds=services.settings.webhook_secret_grace_seconds)
    signing = await webhooks.rotate_signing_secret(session, principal.workspace_id, grace, now)
    return _secret_view(signing, now)


@router.get(
    "/v1/jobs/{job_id}/webhook-deliveries",
    response_model=WebhookDeliveryList,
    response_model_by_alias=True,
)
async def list_webhook_deliveries(
    job_id: str, principal: JobsReader, session: SessionDep
) -> WebhookDeliveryList:
    """List every attempt to deliver the job's webhook event, oldest first."""
    job = await load_job(session, principal, job_id)
    rows = await webhooks.list_deliveries(session, job.id)
    return WebhookDeliveryList(
        data=[
            WebhookDeliveryPublic(
                event_id=row.event_id,
                event_type=row.event_type,
                attempt=row.attempt,
                url=row.url,
                status_code=row.status_code,
                error=row.error,
                duration_ms=row.duration_ms,
                created_at=as_utc(row.created_at) or row.created_at,
            )
            for row in rows
        ]
    )
