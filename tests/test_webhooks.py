"""Webhook signatures against the Standard Webhooks reference, URL checks, secrets, delivery."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from app.activities.webhooks import (
    REQUEST_FAILED,
    RESPONSE_REJECTED,
    TARGET_REJECTED,
    WebhookActivities,
    is_retryable_status,
)
from app.api.job_requests import check_webhook_url, request_hash
from app.api.schemas import JobCreate
from app.config import Environment, Settings
from app.db import accounts, webhooks
from app.db.models import Job, WebhookDelivery
from app.db.session import Database
from app.storage.local import LocalBlobStore
from app.webhooks import signing
from app.webhooks.targets import WebhookTargetError, check_url_form, resolve_target
from app.workflows.types import WebhookConfig, WebhookEvent
from app.workflows.webhook import event_id_for
from tests.webhook_receiver import running_receiver

BODY = b'{"type":"job.succeeded","timestamp":"2026-12-05T10:00:00+00:00","data":{"id":"job_1"}}'
EVENT_ID = "evt_0123456789abcdef01234567"


def signed_headers(secrets: list[str], body: bytes = BODY) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "webhook-id": EVENT_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(secrets, EVENT_ID, timestamp, body),
    }


def test_reference_library_accepts_signature() -> None:
    secret = signing.new_secret()
    headers = signed_headers([secret])
    verified = standardwebhooks.Webhook(secret).verify(BODY, headers)
    assert verified["type"] == "job.succeeded"


def test_reference_library_rejects_changed_body() -> None:
    secret = signing.new_secret()
    headers = signed_headers([secret])
    changed = BODY.replace(b"succeeded", b"failed")
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(changed, headers)


def test_reference_library_rejects_other_secret() -> None:
    headers = signed_headers([signing.new_secret()])
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.new_secret()).verify(BODY, headers)


def test_both_secrets_verify_during_rotation() -> None:
    current, previous = signing.new_secret(), signing.new_secret()
    headers = signed_headers([current, previous])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (current, previous):
        standardwebhooks.Webhook(secret).verify(BODY, headers)
        signing.verify(secret, headers, BODY, now=time.time())


def test_verify_matches_reference_signature() -> None:
    secret = signing.new_secret()
    sent_at = datetime.now(UTC)
    reference = standardwebhooks.Webhook(secret).sign(EVENT_ID, sent_at, BODY)
    headers = {
        "Webhook-Id": EVENT_ID,
        "Webhook-Timestamp": str(int(sent_at.timestamp())),
        "Webhook-Signature": reference,
    }
    signing.verify(secret, headers, BODY, now=time.time())
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(secret, headers, BODY + b" ", now=time.time())
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(secret, headers, BODY, now=time.time() + 3600)


def test_event_id_is_job_hex() -> None:
    assert event_id_for("job_0123456789abcdef01234567") == "evt_0123456789abcdef01234567"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://127.1/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.20:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://[2002:7f00:1::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://0.0.0.0/hook",
        "https://localhost/hook",
        # Special-purpose ranges that Python 3.11 counts as global.
        "https://192.0.0.8/hook",
        "https://192.88.99.1/hook",
        "https://198.51.100.7/hook",
        "https://[5f00::1]/hook",
        "https://[3fff::1]/hook",
    ],
)
async def test_private_target_rejected(url: str) -> None:
    with pytest.raises(WebhookTargetError, match="not a public address"):
        await resolve_target(url, allow_http=False, allow_private=False)


async def test_private_target_allowed_by_setting() -> None:
    target = await resolve_target("http://127.0.0.1:9/hook", allow_http=True, allow_private=True)
    assert target.address == "127.0.0.1"
    assert target.port == 9


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://93.184.216.34/hook", "must be an https URL"),
        ("ftp://93.184.216.34/hook", "must be an https URL"),
        ("https://user:pass@93.184.216.34/hook", "must not contain a user name or password"),
        ("https://token@93.184.216.34/hook", "must not contain a user name or password"),
        ("https:///hook", "must name a host"),
        ("https://93.184.216.34:99999/hook", "invalid port"),
        ("https://93.184.216.34/a b", "must not contain spaces"),
        ("https://[::1/hook", "is not a valid URL"),
        ("https://example.com/" + "a" * 2100, "at most 2048 characters"),
    ],
)
def test_url_form_rejected(url: str, problem: str) -> None:
    with pytest.raises(WebhookTargetError, match=problem):
        check_url_form(url, allow_http=False)


def test_http_allowed_by_setting() -> None:
    parts = check_url_form("http://93.184.216.34/hook", allow_http=True)
    assert parts.scheme == "http"


async def test_public_address_literal_accepted() -> None:
    # An address literal resolves without DNS, and nothing connects to it here.
    target = await resolve_target(
        "https://93.184.216.34/hooks?source=worklane", allow_http=False, allow_private=False
    )
    assert target.address == "93.184.216.34"
    assert target.port == 443
    assert target.request_url() == "https://93.184.216.34:443/hooks?source=worklane"
    assert target.host_header() == "93.184.216.34"


async def test_create_check_names_webhook_field() -> None:
    settings = Settings(environment=Environment.TEST)
    error = await check_webhook_url("https://127.0.0.1/hook", settings)
    assert error is not None
    assert error.field == "webhookUrl"
    assert "127.0.0.1" in error.message
    assert await check_webhook_url(None, settings) is None
    assert await check_webhook_url("https://93.184.216.34/hook", settings) is None
    lenient = Settings(
        environment=Environment.TEST,
        webhook_allow_http=True,
        webhook_allow_private_targets=True,
    )
    assert await check_webhook_url("http://127.0.0.1:8080/hook", lenient) is None


def test_request_hash_unchanged_without_webhook() -> None:
    body = {"toolSlug": "html-to-pdf-api", "input": {"kind": "text", "text": "<p>hi</p>"}}
    without = JobCreate.model_validate(body)
    with_webhook = JobCreate.model_validate(body | {"webhookUrl": "https://93.184.216.34/h"})
    assert request_hash(without) != request_hash(with_webhook)
    # The fingerprint that the API stored for this request before webhooks existed.
    canonical = (
        '{"deadlineSeconds": null, "input": {"contentType": null, "json": null, "kind": "text", '
        '"name": null, "options": null, "sizeBytes": null, "text": "<p>hi</p>"}, '
        '"maxAttempts": null, "metadata": null, "toolSlug": "html-to-pdf-api"}'
    )
    assert request_hash(without) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (302, False), (400, False), (410, False)],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


async def test_secret_created_once_and_rotated(db: Database) -> None:
    async with db.session() as session:
        workspace = await accounts.create_workspace(session, "webhook secrets")
        first = await webhooks.get_signing_secrets(session, workspace.id)
        again = await webhooks.get_signing_secrets(session, workspace.id)
    assert first.current.startswith("whsec_")
    assert again.current == first.current
    assert first.previous is None

    now = datetime.now(UTC)
    async with db.session() as session:
        rotated = await webhooks.rotate_signing_secret(
            session, workspace.id, timedelta(hours=24), now
        )
    assert rotated.current != first.current
    assert rotated.previous == first.current
    assert rotated.previous_expires_at is not None
    assert abs((rotated.previous_expires_at - (now + timedelta(hours=24))).total_seconds()) < 1
    assert rotated.valid_at(now) == [rotated.current, first.current]
    assert rotated.valid_at(now + timedelta(hours=25)) == [rotated.current]


async def _failed_job(db: Database, workspace_id: str, webhook_url: str) -> WebhookEvent:
    job_id = f"job_{uuid.uuid4().hex[:24]}"
    async with db.session() as session:
        session.add(
            Job(
                id=job_id,
                workspace_id=workspace_id,
                tool_slug="image-compress-api",
                status="failed",
                request_hash="test",
                input_kind="file",
                max_attempts=1,
                deadline_seconds=60,
                cost_units=1,
                finished_at=datetime.now(UTC),
                error={"code": "input_corrupt", "message": "damaged", "retryable": False},
                webhook_url=webhook_url,
            )
        )
        await session.commit()
    return WebhookEvent(
        job_id=job_id,
        workspace_id=workspace_id,
        event_id=event_id_for(job_id),
        event_type="job.failed",
        webhook=WebhookConfig(url=webhook_url, request_timeout_seconds=0.5),
    )


def _lenient(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_http": True, "webhook_allow_private_targets": True}
    )


async def _deliveries(db: Database, job_id: str) -> list[WebhookDelivery]:
    async with db.session() as session:
        return await webhooks.list_deliveries(session, job_id)


async def test_delivery_to_blocked_address_stops(
    db: Database, store: LocalBlobStore, settings: Settings, workspace_id: str
) -> None:
    # The API accepted the URL, but the worker does not allow private targets.
    event = await _failed_job(db, workspace_id, "https://127.0.0.1:9/hook")
    delivery = WebhookActivities(db, store, settings)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_webhook, event)
    assert raised.value.non_retryable is True
    assert raised.value.type == TARGET_REJECTED
    rows = await _deliveries(db, event.job_id)
    assert len(rows) == 1
    assert rows[0].status_code is None
    assert rows[0].error is not None
    assert "not a public address" in rows[0].error


async def test_delivery_timeout_is_retryable(
    db: Database, store: LocalBlobStore, settings: Settings, workspace_id: str
) -> None:
    async with running_receiver([200], hang=True) as receiver:
        event = await _failed_job(db, workspace_id, receiver.url)
        delivery = WebhookActivities(db, store, _lenient(settings))
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(delivery.deliver_webhook, event)
    assert raised.value.non_retryable is False
    assert raised.value.type == REQUEST_FAILED
    rows = await _deliveries(db, event.job_id)
    assert [row.error for row in rows] == ["no response within 0.5 s"]
    assert rows[0].duration_ms >= 500


async def test_delivery_redirect_not_followed(
    db: Database, store: LocalBlobStore, settings: Settings, workspace_id: str
) -> None:
    async with running_receiver([302]) as receiver:
        event = await _failed_job(db, workspace_id, receiver.url)
        delivery = WebhookActivities(db, store, _lenient(settings))
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(delivery.deliver_webhook, event)
    assert raised.value.non_retryable is True
    assert raised.value.type == RESPONSE_REJECTED
    assert len(receiver.requests) == 1
    rows = await _deliveries(db, event.job_id)
    assert [row.status_code for row in rows] == [302]


async def test_delivery_body_is_signed_job(
    db: Database, store: LocalBlobStore, settings: Settings, workspace_id: str
) -> None:
    async with running_receiver([204]) as receiver:
        event = await _failed_job(db, workspace_id, receiver.url)
        delivery = WebhookActivities(db, store, _lenient(settings))
        await ActivityEnvironment().run(delivery.deliver_webhook, event)
    request = receiver.requests[0]
    async with db.session() as session:
        secret = (await webhooks.get_signing_secrets(session, workspace_id)).current
    standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["webhook-id"] == event.event_id
    body = json.loads(request.body)
    assert body["type"] == "job.failed"
    assert body["data"]["id"] == event.job_id
    assert body["data"]["error"]["code"] == "input_corrupt"
    assert body["data"]["webhookUrl"] == receiver.url
