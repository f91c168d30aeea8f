"""Delivery of signed webhook events, one HTTP request per activity attempt."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.api.job_views import build_download_intent, to_public
from app.config import Settings
from app.db import webhooks
from app.db.models import Job, WebhookDelivery, as_utc, utcnow
from app.db.session import Database
from app.storage.base import BlobStore
from app.webhooks.signing import signature_header
from app.webhooks.targets import WebhookTarget, WebhookTargetError, resolve_target
from app.workflows import names
from app.workflows.types import JobStatus, WebhookEvent

USER_AGENT = "Worklane-Webhooks/1"
# Error types of the ApplicationErrors raised here; the non-retryable ones stop the retries.
TARGET_REJECTED = "webhook_target_rejected"
RESPONSE_REJECTED = "webhook_response_rejected"
RESPONSE_RETRYABLE = "webhook_response_retryable"
REQUEST_FAILED = "webhook_request_failed"


def is_retryable_status(status_code: int) -> bool:
    """Tell whether a response status calls for another attempt: 429 and every 5xx."""
    return status_code == 429 or status_code >= 500


class WebhookActivities:
    def __init__(self, db: Database, store: BlobStore, settings: Settings) -> None:
        self.db = db
        self.store = store
        self.settings = settings

    @activity.defn(name=names.DELIVER_WEBHOOK)
    async def deliver_webhook(self, event: WebhookEvent) -> None:
        """Send the event once and record the attempt; raise to have Temporal retry or stop.

        Connection errors, timeouts, 429 and 5xx raise retryable errors. Any other status that
        is not 2xx, redirects included, and a URL that now resolves to a blocked address raise
        non-retryable ones.
        """
        attempt = activity.info().attempt
        log_fields = {"job_id": event.job_id, "event_id": event.event_id, "attempt": attempt}
        started = time.monotonic()
        try:
            target = await resolve_target(
                event.webhook.url,
                allow_http=self.settings.webhook_allow_http,
                allow_private=self.settings.webhook_allow_private_targets,
            )
        except WebhookTargetError as err:
            await self._record(event, attempt, started, error=f"target rejected: {err}")
            log_fields["error"] = str(err)
            activity.logger.warning("Webhook target rejected", extra=log_fields)
            raise ApplicationError(
                f"The webhook URL {err}", type=TARGET_REJECTED, non_retryable=True
            ) from err

        body = await self._body(event)
        async with self.db.session() as session:
            signing = await webhooks.get_signing_secrets(session, event.workspace_id)
        try:
            # httpx limits each phase (connect, each read) on its own; this limits the total.
            async with asyncio.timeout(event.webhook.request_timeout_seconds):
                status_code = await self._send(event, target, body, signing)
        except (httpx.HTTPError, TimeoutError) as err:
            if isinstance(err, TimeoutError):
                error = f"no response within {event.webhook.request_timeout_seconds:g} s"
            else:
                error = f"{type(err).__name__}: {err}".rstrip(": ")
            await self._record(event, attempt, started, error=error)
            activity.logger.info("Webhook attempt failed", extra=log_fields | {"error": error})
            raise ApplicationError(f"The request failed: {error}", type=REQUEST_FAILED) from err

        await self._record(event, attempt, started, status_code=status_code)
        log_fields["status_code"] = status_code
        if 200 <= status_code < 300:
            activity.logger.info("Webhook delivered", extra=log_fields)
            return
        if is_retryable_status(status_code):
            activity.logger.info("Webhook receiver asked for a retry", extra=log_fields)
            raise ApplicationError(
                f"The receiver returned HTTP {status_code}", type=RESPONSE_RETRYABLE
            )
        activity.logger.warning("Webhook receiver rejected the event", extra=log_fields)
        raise ApplicationError(
            f"The receiver returned HTTP {status_code}; only 2xx, 429 and 5xx are retried",
            type=RESPONSE_REJECTED,
            non_retryable=True,
        )

    async def _body(self, event: WebhookEvent) -> bytes:
        """Build the event's JSON: the job as ``GET /v1/jobs/{id}`` returns it now.

        A succeeded job whose output has not expired also gets a new download intent, so a
        retry a day later still carries a working URL.
        """
        async with self.db.session() as session:
            job = await session.get(Job, event.job_id)
        if job is None:
            raise ApplicationError(f"job {event.job_id} is not in the job index")
        data = to_public(job, self.store).model_dump(mode="json", by_alias=True)
        if job.status == JobStatus.SUCCEEDED and job.output and not job.output.get("expired"):
            intent = build_download_intent(
                job, self.store, self.settings.download_intent_ttl_seconds
            )
            data["downloadIntent"] = intent.model_dump(mode="json", by_alias=True)
        occurred_at = as_utc(job.finished_at) or utcnow()
        payload = {
            "type": event.event_type,
            "timestamp": occurred_at.isoformat(),
            "data": data,
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    async def _send(
        self,
        event: WebhookEvent,
        target: WebhookTarget,
        body: bytes,
        signing: webhooks.SigningSecrets,
    ) -> int:
        """POST the body to the checked address and return the response status.

        The request goes to the address ``resolve_target`` checked, with the URL's host in the
        ``Host`` header and in TLS (SNI and certificate check), so a DNS answer that changes
        after the check cannot send it elsewhere. Redirects are not followed, proxies from the
        environment are not used, and the response body is not read.
        """
        now = datetime.now(UTC)
        timestamp = int(now.timestamp())
        headers = {
            "Host": target.host_header(),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                signing.valid_at(now), event.event_id, timestamp, body
            ),
        }
        timeout = httpx.Timeout(event.webhook.request_timeout_seconds)
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout
        ) as client:
            request = client.build_request(
                "POST",
                target.request_url(),
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.host},
            )
            response = await client.send(request, stream=True)
            await response.aclose()
        return response.status_code

    async def _record(
        self,
        event: WebhookEvent,
        attempt: int,
        started: float,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        delivery = WebhookDelivery(
            job_id=event.job_id,
            event_id=event.event_id,
            event_type=event.event_type,
            attempt=attempt,
            url=event.webhook.url,
            status_code=status_code,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        async with self.db.session() as session:
            await webhooks.record_delivery(session, delivery)
