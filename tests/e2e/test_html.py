"""html-to-pdf-api over HTTP: text, JSON and uploaded HTML rendered by WeasyPrint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Account, download_pdf, upload, wait_for_job

TWO_PAGES = """<!doctype html><html><head><title>Report</title>
<style>h1 { break-after: page; } .box { display: inline-block; width: 45%; }</style></head>
<body><h1>Quarterly report</h1><p>Second page text</p>
<div class="box">Left box</div><div class="box">Right box</div></body></html>"""


async def create_html_job(
    http: httpx.AsyncClient, account: Account, source: dict[str, Any], **options: Any
) -> dict[str, Any]:
    body = {"toolSlug": "html-to-pdf-api", "input": source | {"options": options}}
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_text_input_renders_pages(http: httpx.AsyncClient, account: Account) -> None:
    job = await create_html_job(
        http, account, {"kind": "text", "text": TWO_PAGES, "name": "report.html"}
    )
    assert job["uploadIntent"] is None
    done = await wait_for_job(http, account, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["output"]["fileName"] == "report.pdf"
    assert done["output"]["metadata"]["pageCount"] == 2
    assert done["output"]["metadata"]["engineVersion"].startswith("WeasyPrint")

    pdf = await download_pdf(http, account, job["id"])
    assert pdf.page_count == 2
    assert "Quarterly report" in pdf[0].get_text()
    assert "Second page text" in pdf[1].get_text()
    assert round(pdf[0].rect.width) == 595  # A4 portrait, in points


async def test_text_with_nul_renders(http: httpx.AsyncClient, account: Account) -> None:
    source = {"kind": "text", "text": "<p>Before\u0000after</p>", "name": "nul.html"}
    job = await create_html_job(http, account, source)
    finished = await wait_for_job(http, account, job["id"])
    assert finished["status"] == "succeeded", finished["error"]
    text = (await download_pdf(http, account, job["id"]))[0].get_text()
    assert "Before" in text
    assert "after" in text


async def test_json_input_with_options(http: httpx.AsyncClient, account: Account) -> None:
    source = {"kind": "json", "json": {"html": "<p>Invoice 42</p>", "css": "p { color: red }"}}
    job = await create_html_job(
        http, account, source, pageSize="Letter", landscape=True, margin="1in", waitUntil="load"
    )
    done = await wait_for_job(http, account, job["id"])
    assert done["status"] == "succeeded", done["error"]
    pdf = await download_pdf(http, account, job["id"])
    assert (round(pdf[0].rect.width), round(pdf[0].rect.height)) == (792, 612)
    assert "Invoice 42" in pdf[0].get_text()


async def test_uploaded_html_file(http: httpx.AsyncClient, account: Account) -> None:
    payload = "<p>Caf\u00e9 cr\u00e8me</p>".encode("cp1252")
    document = (
        b'<html><head><meta charset="windows-1252"></head><body>' + payload + b"</body></html>"
    )
    source = {
        "kind": "file",
        "name": "menu.html",
        "contentType": "text/html",
        "sizeBytes": len(document),
    }
    job = await create_html_job(http, account, source)
    assert (await upload(http, job, document)).status_code == 200
    done = await wait_for_job(http, account, job["id"])
    assert done["status"] == "succeeded", done["error"]
    pdf = await download_pdf(http, account, job["id"])
    assert "Caf\u00e9 cr\u00e8me" in pdf[0].get_text()


async def test_json_without_html_fails(http: httpx.AsyncClient, account: Account) -> None:
    job = await create_html_job(http, account, {"kind": "json", "json": {"body": "<p>x</p>"}})
    done = await wait_for_job(http, account, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "input_corrupt"
    assert "html" in done["error"]["message"]
    assert done["creditsRefunded"] == done["creditsCharged"]


async def test_page_limit_fails_too_large(http: httpx.AsyncClient, account: Account) -> None:
    pages = "".join('<p style="break-after: page">page</p>' for _ in range(520))
    job = await create_html_job(http, account, {"kind": "text", "text": pages})
    done = await wait_for_job(http, account, job["id"], timeout=120)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "input_too_large"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"margin": "1 inch"}, "input.options.margin"),
        ({"pageSize": "B5"}, "input.options.pageSize"),
        ({"waitUntil": "forever"}, "input.options.waitUntil"),
        ({"margin": "300mm"}, "input.options.margin"),
        ({"margin": "105mm"}, "input.options.margin"),
        ({"margin": "1in", "pageSize": "A5", "landscape": True, "extra": 1}, "input.options.extra"),
    ],
)
async def test_invalid_html_options(
    http: httpx.AsyncClient, account: Account, options: dict[str, Any], field: str
) -> None:
    body = {
        "toolSlug": "html-to-pdf-api",
        "input": {"kind": "text", "text": "<p>x</p>", "options": options},
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 422
    fields = [item["field"] for item in response.json()["error"]["details"]["fields"]]
    assert field in fields


async def test_negative_margin_message(http: httpx.AsyncClient, account: Account) -> None:
    body = {
        "toolSlug": "html-to-pdf-api",
        "input": {"kind": "text", "text": "<p>x</p>", "options": {"margin": "-1mm"}},
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 422
    messages = {f["field"]: f["message"] for f in response.json()["error"]["details"]["fields"]}
    assert "CSS length" in messages["input.options.margin"]


async def test_deep_nesting_fails_without_retry(http: httpx.AsyncClient, account: Account) -> None:
    text = "<div>" * 5000 + "deep" + "</div>" * 5000
    job = await create_html_job(http, account, {"kind": "text", "text": text})
    done = await wait_for_job(http, account, job["id"], timeout=120)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "input_too_large"
    assert done["attempt"] == 1


async def upload_html(http: httpx.AsyncClient, account: Account, data: bytes) -> dict[str, Any]:
    source = {
        "kind": "file",
        "name": "page.html",
        "contentType": "text/html",
        "sizeBytes": len(data),
    }
    job = await create_html_job(http, account, source)
    assert (await upload(http, job, data)).status_code == 200
    return await wait_for_job(http, account, job["id"])


async def test_binary_upload_is_type_mismatch(http: httpx.AsyncClient, account: Account) -> None:
    done = await upload_html(http, account, b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert done["status"] == "failed"
    assert done["error"]["code"] == "input_type_mismatch"


async def test_utf16_upload_with_bom(http: httpx.AsyncClient, account: Account) -> None:
    done = await upload_html(http, account, "<p>utf16 text \u00e9</p>".encode("utf-16"))
    assert done["status"] == "succeeded", done["error"]
    pdf = await download_pdf(http, account, done["id"])
    assert "utf16 text \u00e9" in pdf[0].get_text()
