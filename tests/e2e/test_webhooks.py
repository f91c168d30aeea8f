"""Signed webhooks over HTTP: retries, the delivery log, secrets, and URL checks at create."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import standardwebhooks
from temporalio.client import Client

from app.workflows.types import WebhookOutcome
from app.workflows.webhook import child_workflow_id
from tests.e2e.conftest import Account, Stack, create_file_job, upload, wait_for_job
from tests.images import gradient_png
from tests.webhook_receiver import running_receiver


async def webhook_secret(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await http.get("/v1/webhooks/secret", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def webhook_outcome(temporal: Client, job_id: str) -> WebhookOutcome:
    """Wait for the job's webhook workflow to end; after that no attempt follows."""
    handle = temporal.get_workflow_handle(child_workflow_id(job_id), result_type=WebhookOutcome)
    async with asyncio.timeout(30):
        outcome: WebhookOutcome = await handle.result()
    return outcome


async def wait_for_deliveries(
    http: httpx.AsyncClient, account: Account, job_id: str, count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get(f"/v1/jobs/{job_id}/webhook-deliveries", headers=account.headers)
        assert response.status_code == 200, response.text
        deliveries: list[dict[str, Any]] = response.json()["data"]
        if len(deliveries) >= count:
            return deliveries
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{len(deliveries)} webhook deliveries listed, expected {count}")
        await asyncio.sleep(0.1)


async def test_webhook_retried_until_delivered(
    http: httpx.AsyncClient, account: Account, temporal: Client
) -> None:
    secret = (await webhook_secret(http, account))["secret"]
    payload = gradient_png(64, 48)
    async with running_receiver([500, 500, 200]) as receiver:
        job = await create_file_job(http, account, payload, webhookUrl=receiver.url)
        assert job["webhookUrl"] == receiver.url
        assert (await upload(http, job, payload)).status_code == 200
        finished = await wait_for_job(http, account, job["id"])
        assert finished["status"] == "succeeded"
        requests = await receiver.wait_for_requests(3)
        deliveries = await wait_for_deliveries(http, account, job["id"], 3)
        outcome = await webhook_outcome(temporal, job["id"])
        assert outcome.delivered is True
        assert len(receiver.requests) == 3

    verifier = standardwebhooks.Webhook(secret)
    event_ids = {request.headers["webhook-id"] for request in requests}
    assert event_ids == {"evt_" + job["id"].removeprefix("job_")}
    for request in requests:
        assert request.method == "POST"
        assert request.path == "/hooks/worklane"
        assert request.headers["content-type"] == "application/json"
        verifier.verify(request.body, request.headers)
    event = json.loads(requests[-1].body)
    assert event["type"] == "job.succeeded"
    assert datetime.fromisoformat(event["timestamp"]) == datetime.fromisoformat(
        finished["finishedAt"]
    )
    data = event["data"]
    assert data["id"] == job["id"]
    assert data["status"] == "succeeded"
    assert data["output"] == finished["output"]
    assert data["webhookUrl"] == receiver.url
    download = await http.get(data["downloadIntent"]["url"])
    assert download.status_code == 200
    assert len(download.content) == finished["output"]["sizeBytes"]

    assert [item["attempt"] for item in deliveries] == [1, 2, 3]
    assert [item["statusCode"] for item in deliveries] == [500, 500, 200]
    assert {item["eventId"] for item in deliveries} == event_ids
    assert {item["eventType"] for item in deliveries} == {"job.succeeded"}
    assert {item["url"] for item in deliveries} == {receiver.url}
    assert all(item["error"] is None for item in deliveries)
    assert all(item["durationMs"] >= 0 for item in deliveries)


async def test_silent_receiver_does_not_delay_job(
    http: httpx.AsyncClient, account: Account
) -> None:
    payload = gradient_png(64, 48)
    async with running_receiver([200], hang=True) as receiver:
        job = await create_file_job(http, account, payload, webhookUrl=receiver.url)
        assert (await upload(http, job, payload)).status_code == 200
        await receiver.wait_for_requests(1)
        # The delivery still waits for a response, and the job has finished already.
        response = await http.get(f"/v1/jobs/{job['id']}", headers=account.headers)
        assert response.json()["status"] == "succeeded"
        deliveries = await http.get(
            f"/v1/jobs/{job['id']}/webhook-deliveries", headers=account.headers
        )
        assert deliveries.json()["data"] == []


async def test_rejected_status_stops_retries(
    http: httpx.AsyncClient, account: Account, temporal: Client
) -> None:
    async with running_receiver([410, 200]) as receiver:
        job = await create_file_job(http, account, b"not an image\n" * 10, webhookUrl=receiver.url)
        assert (await upload(http, job, b"not an image\n" * 10)).status_code == 200
        finished = await wait_for_job(http, account, job["id"])
        assert finished["status"] == "failed"
        deliveries = await wait_for_deliveries(http, account, job["id"], 1)
        outcome = await webhook_outcome(temporal, job["id"])
        assert outcome.delivered is False
        assert len(receiver.requests) == 1
    assert [item["statusCode"] for item in deliveries] == [410]
    event = json.loads(receiver.requests[0].body)
    assert event["type"] == "job.failed"
    assert event["data"]["error"]["code"] == "input_type_mismatch"
    assert "downloadIntent" not in event["data"]
    job_now = await http.get(f"/v1/jobs/{job['id']}", headers=account.headers)
    assert job_now.json()["status"] == "failed"


async def test_canceled_job_sends_event(http: httpx.AsyncClient, account: Account) -> None:
    async with running_receiver([200]) as receiver:
        job = await create_file_job(http, account, gradient_png(), webhookUrl=receiver.url)
        canceled = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
        assert canceled.json()["status"] == "canceled"
        requests = await receiver.wait_for_requests(1)
    event = json.loads(requests[0].body)
    assert event["type"] == "job.canceled"
    assert event["data"]["error"]["canceledWhile"] == "queued"


async def test_rotation_signs_with_both_secrets(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account()
    first = await webhook_secret(http, account)
    assert first["secret"].startswith("whsec_")
    assert first["previousSecret"] is None
    assert (await webhook_secret(http, account))["secret"] == first["secret"]

    response = await http.post("/v1/webhooks/secret/rotate", headers=account.headers)
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["secret"] != first["secret"]
    assert rotated["previousSecret"] == first["secret"]
    expires_at = datetime.fromisoformat(rotated["previousSecretExpiresAt"])
    expected = datetime.now(UTC) + timedelta(hours=24)
    assert abs((expires_at - expected).total_seconds()) < 60
    assert await webhook_secret(http, account) == rotated

    async with running_receiver([200]) as receiver:
        job = await create_file_job(http, account, gradient_png(), webhookUrl=receiver.url)
        await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
        requests = await receiver.wait_for_requests(1)
    signatures = requests[0].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for secret in (rotated["secret"], first["secret"]):
        standardwebhooks.Webhook(secret).verify(requests[0].body, requests[0].headers)


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/hook", "https://user:secret@127.0.0.1/hook", "not a url", "https:///hook"],
)
async def test_invalid_webhook_url_rejected(
    http: httpx.AsyncClient, account: Account, url: str
) -> None:
    body = {
        "toolSlug": "image-compress-api",
        "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 10},
        "webhookUrl": url,
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_job"
    fields = [item["field"] for item in error["details"]["fields"]]
    assert fields == ["webhookUrl"]


async def test_other_workspace_deliveries_not_found(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    job = await create_file_job(http, account, gradient_png())
    other = stack.new_account()
    response = await http.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"
    own = await http.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=account.headers)
    assert own.json() == {"data": []}


async def test_webhook_routes_need_scopes(stack: Stack, http: httpx.AsyncClient) -> None:
    reader = stack.new_account(scopes="jobs:read")
    for method, path in (("GET", "/v1/webhooks/secret"), ("POST", "/v1/webhooks/secret/rotate")):
        response = await http.request(method, path, headers=reader.headers)
        assert response.status_code == 403
        assert response.json()["error"]["details"]["requiredScope"] == "jobs:write"
