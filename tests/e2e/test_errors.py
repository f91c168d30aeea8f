"""Every error the API returns, with its status, code and details, over HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from app.config import DEVELOPMENT_SIGNING_SECRET
from app.storage.signing import SignedRequest
from tests.e2e.conftest import Account, Stack, create_file_job, run_file_job, upload
from tests.images import gradient_png


def image_body(**input_fields: Any) -> dict[str, Any]:
    fields = {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 1000}
    return {"toolSlug": "image-compress-api", "input": fields | input_fields}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


async def test_missing_unknown_and_revoked_keys(stack: Stack, http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/tools"), 401, "unauthorized")
    assert_error(
        await http.get("/v1/tools", headers={"Authorization": "Bearer wl_nope"}),
        401,
        "unauthorized",
    )
    wrong_scheme = assert_error(
        await http.get("/v1/tools", headers={"Authorization": "Basic abc"}), 401, "unauthorized"
    )
    assert "Bearer scheme" in wrong_scheme["message"]

    account = stack.new_account()
    assert (await http.get("/v1/tools", headers=account.headers)).status_code == 200
    stack.cli("key", "revoke", account.key_id)
    assert_error(await http.get("/v1/tools", headers=account.headers), 401, "unauthorized")


async def test_missing_scope_is_forbidden(stack: Stack, http: httpx.AsyncClient) -> None:
    reader = stack.new_account(scopes="tools:read,jobs:read")
    error = assert_error(
        await http.post("/v1/jobs", json=image_body(), headers=reader.headers), 403, "forbidden"
    )
    assert error["details"]["requiredScope"] == "jobs:write"
    assert_error(
        await http.get("/v1/jobs/job_x/download-intent", headers=reader.headers), 403, "forbidden"
    )
    no_tools = stack.new_account(scopes="jobs:read")
    assert_error(await http.get("/v1/tools", headers=no_tools.headers), 403, "forbidden")


async def test_catalog_lists_every_tool(http: httpx.AsyncClient, account: Account) -> None:
    response = await http.get("/v1/tools", headers=account.headers)
    assert response.status_code == 200
    tools = {tool["slug"]: tool for tool in response.json()["data"]}
    assert len([t for t in tools.values() if not t["browserOnly"]]) == 13
    assert len([t for t in tools.values() if t["browserOnly"]]) >= 2
    image = tools["image-compress-api"]
    assert image["apiJobs"] is True
    assert image["optionsSchema"]["properties"]["quality"]["maximum"] == 95
    assert tools["word-to-pdf"]["apiJobs"] is True
    assert tools["trim-video"]["apiJobs"] is True
    assert tools["json-formatter"]["apiJobsReason"]

    one = await http.get("/v1/tools/image-compress-api", headers=account.headers)
    assert one.json() == image
    assert_error(await http.get("/v1/tools/nope", headers=account.headers), 404, "tool_not_found")


async def test_unknown_and_browser_only_tools(http: httpx.AsyncClient, account: Account) -> None:
    async def post(body: dict[str, Any]) -> httpx.Response:
        return await http.post("/v1/jobs", json=body, headers=account.headers)

    assert_error(await post({**image_body(), "toolSlug": "nope"}), 404, "tool_not_found")
    error = assert_error(
        await post({"toolSlug": "json-formatter", "input": {"kind": "text", "text": "{}"}}),
        422,
        "browser_only_tool",
    )
    assert "browser" in error["message"]


async def test_malformed_bodies_are_invalid_payloads(
    http: httpx.AsyncClient, account: Account
) -> None:
    headers = account.headers | {"Content-Type": "application/json"}
    assert_error(
        await http.post("/v1/jobs", content=b"{not json", headers=headers),
        400,
        "invalid_job_payload",
    )
    error = assert_error(
        await http.post(
            "/v1/jobs", json={"toolSlug": "image-compress-api"}, headers=account.headers
        ),
        400,
        "invalid_job_payload",
    )
    assert {"field": "input", "message": "Field required"} in error["details"]["fields"]
    assert_error(
        await http.post("/v1/jobs", json={**image_body(), "surprise": 1}, headers=account.headers),
        400,
        "invalid_job_payload",
    )
    assert_error(
        await http.post("/v1/jobs", json=image_body(kind="pigeon"), headers=account.headers),
        400,
        "invalid_job_payload",
    )


@pytest.mark.parametrize(
    ("input_fields", "field", "fragment"),
    [
        ({"options": {"qualty": 50}}, "input.options.qualty", "unknown option"),
        ({"options": {"quality": 0}}, "input.options.quality", "1 to 95"),
        ({"contentType": "image/gif", "name": "a.gif"}, "input.contentType", "not accepted"),
        ({"name": "a.jpg"}, "input.name", "extension"),
        ({"name": "../../etc/passwd.png"}, "input.name", "not a path"),
        ({"name": ".hidden.png"}, "input.name", "'.'"),
        ({"name": "bad\u0000name.png"}, "input.name", "control"),
        ({"sizeBytes": 0}, "input.sizeBytes", "empty"),
        ({"sizeBytes": -5}, "input.sizeBytes", "above 0"),
        ({"sizeBytes": 60 * 1024 * 1024}, "input.sizeBytes", "over the limit"),
        ({"kind": "text", "text": "hi"}, "input.kind", "not accepted"),
    ],
)
async def test_invalid_job_names_the_field(
    http: httpx.AsyncClient,
    account: Account,
    input_fields: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    response = await http.post("/v1/jobs", json=image_body(**input_fields), headers=account.headers)
    error = assert_error(response, 422, "invalid_job")
    messages = {item["field"]: item["message"] for item in error["details"]["fields"]}
    assert field in messages, messages
    assert fragment in messages[field]


async def test_invalid_job_lists_every_problem(http: httpx.AsyncClient, account: Account) -> None:
    body = image_body(name="x.txt", sizeBytes=-1, options={"quality": 500, "color": "red"})
    body |= {"maxAttempts": 99, "deadlineSeconds": 1}
    error = assert_error(
        await http.post("/v1/jobs", json=body, headers=account.headers), 422, "invalid_job"
    )
    fields = {item["field"] for item in error["details"]["fields"]}
    assert {
        "input.name",
        "input.sizeBytes",
        "input.options.quality",
        "input.options.color",
        "maxAttempts",
        "deadlineSeconds",
    } <= fields


async def test_jobs_of_other_workspaces_are_not_found(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    job = await create_file_job(http, account, gradient_png())
    stranger = stack.new_account()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/v1/jobs/{job['id']}/close"),
        ("GET", f"/v1/jobs/{job['id']}/download-intent"),
    ]:
        response = await http.request(method, path, headers=stranger.headers)
        assert_error(response, 404, "job_not_found")
    listed = (await http.get("/v1/jobs", headers=stranger.headers)).json()["data"]
    assert listed == []


async def test_download_before_success_is_not_ready(
    http: httpx.AsyncClient, account: Account
) -> None:
    job = await create_file_job(http, account, gradient_png())
    error = assert_error(
        await http.get(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers),
        409,
        "download_not_ready",
    )
    assert error["details"]["status"] == "queued"
    finished = await run_file_job(http, account, b"not an image at all" * 10)
    assert_error(
        await http.post(f"/v1/jobs/{finished['id']}/download-intent", headers=account.headers),
        409,
        "download_not_ready",
    )


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.usefixtures("local_store")
async def test_upload_url_checks(http: httpx.AsyncClient, account: Account) -> None:
    payload = gradient_png()
    job = await create_file_job(http, account, payload)
    intent = job["uploadIntent"]
    url = intent["url"]

    tampered_signature = _with_query(url, signature="0" * 64)
    assert_error(
        await http.put(tampered_signature, content=payload, headers=intent["headers"]),
        403,
        "invalid_signature",
    )
    bigger = _with_query(url, size=str(len(payload) + 1))
    assert_error(
        await http.put(bigger, content=payload + b"x", headers=intent["headers"]),
        403,
        "invalid_signature",
    )
    unsigned = url.split("&signature=")[0]
    assert_error(
        await http.put(unsigned, content=payload, headers=intent["headers"]),
        403,
        "invalid_signature",
    )
    assert_error(await http.get(url), 403, "invalid_signature")
    other_key = url.replace("/input-", "/input-0")
    assert_error(
        await http.put(other_key, content=payload, headers=intent["headers"]),
        403,
        "invalid_signature",
    )

    expired = SignedRequest(
        "PUT", intent["objectKey"], "image/png", int(time.time()) - 5, size_bytes=len(payload)
    )
    # The end-to-end stack runs with the development signing secret.
    expired_url = expired.url(str(http.base_url).rstrip("/"), DEVELOPMENT_SIGNING_SECRET)
    assert_error(
        await http.put(expired_url, content=payload, headers=intent["headers"]), 403, "url_expired"
    )

    assert_error(
        await http.put(url, content=payload, headers={"Content-Type": "image/jpeg"}),
        415,
        "input_type_mismatch",
    )
    short = assert_error(
        await http.put(url, content=payload[:-1], headers=intent["headers"]),
        400,
        "input_size_mismatch",
    )
    assert short["details"] == {"declaredBytes": len(payload), "receivedBytes": len(payload) - 1}

    stored = await upload(http, job, payload)
    assert stored.status_code == 200
    assert_error(await upload(http, job, payload), 409, "upload_already_used")


@pytest.mark.usefixtures("local_store")
async def test_download_url_checks(http: httpx.AsyncClient, account: Account) -> None:
    job = await run_file_job(http, account, gradient_png())
    intent = (
        await http.get(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    ).json()
    assert (await http.get(intent["url"])).status_code == 200
    renamed = _with_query(intent["url"], fileName="evil.exe")
    assert_error(await http.get(renamed), 403, "invalid_signature")
    as_upload = await http.put(intent["url"], content=b"x", headers={"Content-Type": "image/jpeg"})
    assert_error(as_upload, 403, "invalid_signature")


async def test_listing_rejects_bad_parameters(http: httpx.AsyncClient, account: Account) -> None:
    for params in ({"limit": 0}, {"limit": "abc"}, {"status": "done"}, {"cursor": "%%%"}):
        error = assert_error(
            await http.get("/v1/jobs", params=params, headers=account.headers),
            400,
            "invalid_request",
        )
        assert error["message"] != "Invalid request parameters: ."
    unknown_tool = assert_error(
        await http.get("/v1/jobs", params={"toolSlug": "nope"}, headers=account.headers),
        400,
        "invalid_request",
    )
    assert "nope" in unknown_tool["message"]


async def test_large_json_body_rejected(http: httpx.AsyncClient, account: Account) -> None:
    body = image_body() | {"metadata": {"note": "x" * (9 * 1024 * 1024)}}
    error = assert_error(
        await http.post("/v1/jobs", json=body, headers=account.headers), 413, "request_too_large"
    )
    assert error["details"]["maxBytes"] == 8 * 1024 * 1024


async def test_openapi_operation_ids_unique(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    ids = [
        operation["operationId"]
        for path in spec["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(ids) == len(set(ids))


def test_cli_rejects_empty_scopes_and_names(stack: Stack) -> None:
    workspace_id = stack.cli("workspace", "create", "scopes").strip()
    with pytest.raises(AssertionError, match="no scopes given"):
        stack.cli("key", "create", workspace_id, "--scopes", "")
    with pytest.raises(AssertionError, match="must not be empty"):
        stack.cli("workspace", "create", " ")


async def test_health_readiness_and_metrics(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok", "storage": "ok"}
    metrics = await http.get("/metrics")
    assert "worklane_http_requests_total" in metrics.text
    assert_error(await http.get("/v1/nothing-here"), 404, "not_found")
