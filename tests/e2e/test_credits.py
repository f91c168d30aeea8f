"""Credits over HTTP: debits, refunds, the ledger endpoint and no overdraft under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    Account,
    Stack,
    create_file_job,
    run_file_job,
    upload,
    wait_for_job,
)
from tests.images import gradient_png, slow_webp


async def balance(http: httpx.AsyncClient, account: Account) -> int:
    response = await http.get("/v1/credits", headers=account.headers)
    assert response.status_code == 200, response.text
    value: int = response.json()["balance"]
    return value


async def ledger(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await http.get("/v1/credits", params=params, headers=account.headers)).json()
        entries.extend(page["data"])
        cursor = page["nextCursor"]
        if cursor is None:
            return entries


async def test_success_charges_and_failure_refunds(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=10)
    assert await balance(http, account) == 10

    succeeded = await run_file_job(http, account, gradient_png())
    assert succeeded["status"] == "succeeded"
    assert succeeded["creditsCharged"] == 1
    assert succeeded["creditsRefunded"] == 0
    assert await balance(http, account) == 9

    failed = await run_file_job(http, account, b"plain text, not a PNG" * 5)
    assert failed["status"] == "failed"
    assert failed["creditsCharged"] == 1
    assert failed["creditsRefunded"] == 1
    assert await balance(http, account) == 9

    entries = await ledger(http, account)
    reasons = [(entry["reason"], entry["amount"], entry["jobId"]) for entry in entries]
    assert reasons == [
        ("job_refund", 1, failed["id"]),
        ("job_debit", -1, failed["id"]),
        ("job_debit", -1, succeeded["id"]),
        ("opening_balance", 10, None),
    ]
    assert entries[0]["balanceAfter"] == 9
    assert sum(entry["amount"] for entry in entries) == 9


async def test_cancel_refunds_by_state(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=10)

    queued = await create_file_job(http, account, gradient_png())
    canceled = await http.post(f"/v1/jobs/{queued['id']}/cancel", headers=account.headers)
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["creditsRefunded"] == 1
    assert await balance(http, account) == 10

    payload = slow_webp()
    running = await create_file_job(
        http,
        account,
        payload,
        name="big.webp",
        content_type="image/webp",
        options={"maxWidth": 6000},
    )
    await upload(http, running, payload)
    await wait_for_job(http, account, running["id"], statuses=("running",))
    response = await http.post(f"/v1/jobs/{running['id']}/cancel", headers=account.headers)
    job = response.json()
    assert job["status"] == "canceled"
    assert job["error"]["canceledWhile"] == "running"
    assert job["creditsCharged"] == 1
    # Canceled while running keeps one credit; this tool costs one, so nothing comes back.
    assert job["creditsRefunded"] == 0
    assert await balance(http, account) == 9


async def test_concurrent_cancels_refund_once(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=5)
    job = await create_file_job(http, account, gradient_png())
    responses = await asyncio.gather(
        *(http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers) for _ in range(8))
    )
    assert {response.status_code for response in responses} <= {200, 409}
    refunds = [e for e in await ledger(http, account) if e["reason"] == "job_refund"]
    assert len(refunds) == 1
    assert await balance(http, account) == 5


async def test_insufficient_credits(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=0)
    body = {
        "toolSlug": "image-compress-api",
        "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 10},
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["details"] == {"balance": 0, "cost": 1}
    listed = (await http.get("/v1/jobs", headers=account.headers)).json()["data"]
    assert listed == []

    invalid = await http.post(
        "/v1/jobs", json={**body, "toolSlug": "nope"}, headers=account.headers
    )
    assert invalid.status_code == 404


async def test_no_overdraft_under_concurrency(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=10)
    body = {
        "toolSlug": "image-compress-api",
        "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 10},
    }
    responses = await asyncio.gather(
        *(http.post("/v1/jobs", json=body, headers=account.headers) for _ in range(50))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [402] * 40, [r.text for r in responses if r.status_code >= 500]
    assert await balance(http, account) == 0
    entries = await ledger(http, account)
    assert sum(entry["amount"] for entry in entries) == 0
    assert len([entry for entry in entries if entry["reason"] == "job_debit"]) == 10


async def test_idempotent_replay_charges_once(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=1)
    body = {
        "toolSlug": "image-compress-api",
        "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 10},
    }
    headers = account.headers | {"Idempotency-Key": "charge-once"}
    first = await http.post("/v1/jobs", json=body, headers=headers)
    again = await http.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert await balance(http, account) == 0


async def test_credits_need_billing_scope(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(scopes="jobs:read")
    response = await http.get("/v1/credits", headers=account.headers)
    assert response.status_code == 403
    assert response.json()["error"]["details"]["requiredScope"] == "billing:read"
    bad_cursor = await http.get(
        "/v1/credits", params={"cursor": "x"}, headers=stack.new_account().headers
    )
    assert bad_cursor.status_code == 400


async def test_admin_grant_revoke_and_show(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=3)
    stack.cli("credits", "grant", account.workspace_id, "7", "--reason", "support ticket 1")
    assert await balance(http, account) == 10
    stack.cli("credits", "revoke", account.workspace_id, "4", "--reason", "correction")
    assert await balance(http, account) == 6
    entries = await ledger(http, account)
    assert [entry["reason"] for entry in entries[:2]] == ["revoke", "grant"]
    assert entries[0]["note"] == "correction"

    summary = stack.cli("workspace", "show", account.workspace_id)
    assert "balance:   6 credits" in summary


@pytest.mark.parametrize(
    "arguments",
    [
        ("credits", "grant", "{ws}", "0", "--reason", "zero"),
        ("credits", "grant", "{ws}", "-5", "--reason", "negative"),
        ("credits", "revoke", "{ws}", "-5", "--reason", "negative"),
        ("credits", "grant", "{ws}", "99999999999999999999", "--reason", "huge"),
        ("credits", "grant", "{ws}", "5", "--reason", " "),
        ("key", "create", "{ws}", "--rate", "-1"),
        ("key", "create", "{ws}", "--rate", "inf"),
        ("key", "create", "{ws}", "--rate", "nan"),
        ("key", "create", "{ws}", "--burst", "0"),
        ("workspace", "create", "negative", "--balance", "-5"),
    ],
)
def test_cli_rejects_bad_amounts(stack: Stack, arguments: tuple[str, ...]) -> None:
    workspace_id = stack.cli("workspace", "create", "amounts", "--balance", "10").strip()
    before = stack.cli("workspace", "list").count("\n")
    with pytest.raises(AssertionError, match="error"):
        stack.cli(*(argument.format(ws=workspace_id) for argument in arguments))
    assert stack.cli("workspace", "list").count("\n") == before
    assert "balance:   10 credits" in stack.cli("workspace", "show", workspace_id)


def test_cli_merges_duplicate_scopes(stack: Stack) -> None:
    workspace_id = stack.cli("workspace", "create", "scopes").strip()
    output = stack.cli("key", "create", workspace_id, "--scopes", "tools:read,tools:read")
    assert "scopes:    tools:read\n" in output


async def test_credits_cursor_must_be_ascii_digits(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account()
    for cursor in ("²", "١٥", "9" * 24, "-1"):
        response = await http.get("/v1/credits", params={"cursor": cursor}, headers=account.headers)
        assert response.status_code == 400, (cursor, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
