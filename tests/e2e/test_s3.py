"""The S3 store end to end: the bucket checks presigned URLs, jobs find uploads by polling.

These tests run in the S3 leg only (WORKLANE_TEST_STORAGE=s3); the rest of the suite runs
there too, against the same bucket.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.e2e.conftest import Account, Stack, create_file_job, upload, wait_for_job
from tests.images import gradient_png
from tests.s3server import S3Server


def _backdated(url: str, minutes: int) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    query["X-Amz-Date"] = (signed_at - timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ")
    return parts._replace(query=urlencode(query)).geturl()


async def test_bucket_rejects_bad_uploads(
    s3: S3Server, stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    payload = gradient_png(120, 80)
    job = await create_file_job(http, account, payload)
    intent = job["uploadIntent"]
    assert intent["url"].startswith(s3.endpoint_url)
    assert intent["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    url, headers = intent["url"], intent["headers"]

    rejected = {
        "wrong type": await http.put(
            url, content=payload, headers=headers | {"Content-Type": "image/jpeg"}
        ),
        "short body": await http.put(url, content=payload[:-1], headers=headers),
        "long body": await http.put(url, content=payload + b"\0", headers=headers),
        "no condition": await http.put(url, content=payload, headers={"Content-Type": "image/png"}),
        "backdated": await http.put(_backdated(url, 20), content=payload, headers=headers),
    }
    for case, response in rejected.items():
        assert response.status_code == 403, f"{case}: {response.text}"
    assert "Request has expired" in rejected["backdated"].text
    assert stack.object_keys(job["id"]) == []
    still_queued = (await http.get(f"/v1/jobs/{job['id']}", headers=account.headers)).json()
    assert still_queued["status"] == "queued"

    assert (await upload(http, job, payload)).status_code == 200
    second = await upload(http, job, payload)
    assert second.status_code == 412, second.text

    # No upload signal reaches the workflow: it finds the object by polling the bucket.
    finished = await wait_for_job(http, account, job["id"])
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["attempt"] == 1
    assert finished["creditsCharged"] == finished["costUnits"]
    keys = stack.object_keys(job["id"])
    assert len([key for key in keys if "/output-" in key]) == 1

    intent = (
        await http.post(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    ).json()
    assert intent["url"].startswith(s3.endpoint_url)
    download = await http.get(intent["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/jpeg"
    assert download.headers["content-disposition"].startswith('attachment; filename="photo.jpg"')
    assert len(download.content) == finished["output"]["sizeBytes"]
    assert (await http.get(_backdated(intent["url"], 20))).status_code == 403
