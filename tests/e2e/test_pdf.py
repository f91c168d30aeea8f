"""The PDF tools over HTTP: images ZIP, text, Markdown and DOCX, with their quality metadata."""

from __future__ import annotations

import asyncio
import io
import zipfile
from typing import Any

import docx
import httpx
import pytest

from tests import pdfs
from tests.e2e.conftest import Account, create_file_job, run_file_job, upload, wait_for_job

pytestmark = pytest.mark.timeout(120)


async def _convert(
    http: httpx.AsyncClient, account: Account, tool: str, data: bytes, **options: Any
) -> dict[str, Any]:
    return await run_file_job(
        http,
        account,
        data,
        toolSlug=tool,
        name="input.pdf",
        content_type="application/pdf",
        options=options,
    )


async def _download(http: httpx.AsyncClient, account: Account, job: dict[str, Any]) -> bytes:
    intent = await http.post(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    response = await http.get(intent.json()["url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(job["output"]["contentType"])
    return response.content


async def test_images_zip(http: httpx.AsyncClient, account: Account) -> None:
    job = await _convert(http, account, "pdf-to-images-zip", pdfs.mixed_pdf(), dpi=72)
    assert job["status"] == "succeeded", job["error"]
    assert job["output"]["fileName"] == "input.zip"
    with zipfile.ZipFile(io.BytesIO(await _download(http, account, job))) as archive:
        assert archive.namelist() == [f"page-00{number}.png" for number in range(1, 5)]
    metadata = job["output"]["metadata"]
    assert metadata["pages"][2] == {"page": 3, "width": 842, "height": 595}
    assert metadata["zipBytes"] == job["output"]["sizeBytes"]


async def test_text_reports_scanned_page(http: httpx.AsyncClient, account: Account) -> None:
    job = await _convert(http, account, "pdf-to-text", pdfs.mixed_pdf())
    assert job["status"] == "succeeded", job["error"]
    text = (await _download(http, account, job)).decode("utf-8")
    assert "First page text." in text
    assert text.count("\f") == 3
    metadata = job["output"]["metadata"]
    assert metadata["ocr"] is False
    assert metadata["textLayer"] == "partial"
    assert metadata["pagesWithoutText"] == [2]


async def test_markdown_quality(http: httpx.AsyncClient, account: Account) -> None:
    job = await _convert(http, account, "pdf-to-markdown", pdfs.mixed_pdf(), pageRange="1-2,4")
    assert job["status"] == "succeeded", job["error"]
    markdown = (await _download(http, account, job)).decode("utf-8")
    assert "# Prices" in markdown
    metadata = job["output"]["metadata"]
    assert metadata["pageCount"] == 3
    assert metadata["tables"] == 1
    assert metadata["grade"] == "fair"
    assert metadata["gradeReasons"] == ["page 2 has no text layer"]


async def test_docx_text_only(http: httpx.AsyncClient, account: Account) -> None:
    job = await _convert(http, account, "pdf-to-docx", pdfs.text_pdf(2, marker="Gamma"))
    assert job["status"] == "succeeded", job["error"]
    assert job["output"]["fileName"] == "input.docx"
    document = docx.Document(io.BytesIO(await _download(http, account, job)))
    assert document.paragraphs[0].text == "Gamma chapter 1"
    style = document.paragraphs[0].style
    assert style is not None
    assert style.name == "Heading 1"
    assert job["output"]["metadata"]["textOnly"] is True


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (pdfs.encrypted_pdf(), "input_encrypted"),
        (b"%PDF-1.4 this is not really a PDF" + bytes(100), "input_corrupt"),
        (pdfs.text_pdf(1)[:200], "input_corrupt"),
        (b"<!doctype html><html><body>not a PDF</body></html>", "input_type_mismatch"),
    ],
)
async def test_bad_pdfs_fail(
    http: httpx.AsyncClient, account: Account, data: bytes, code: str
) -> None:
    job = await _convert(http, account, "pdf-to-text", data)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["error"]["retryable"] is False
    assert job["attempt"] == 1


async def test_repaired_pdf_converts(http: httpx.AsyncClient, account: Account) -> None:
    job = await _convert(http, account, "pdf-to-text", pdfs.truncated_pdf())
    assert job["status"] == "succeeded", job["error"]
    assert job["output"]["metadata"]["repaired"] is True


async def test_invalid_dpi_rejected(http: httpx.AsyncClient, account: Account) -> None:
    body = {
        "toolSlug": "pdf-to-images-zip",
        "input": {
            "kind": "file",
            "name": "a.pdf",
            "contentType": "application/pdf",
            "sizeBytes": 100,
            "options": {"dpi": 600},
        },
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert fields == [
        {"field": "input.options.dpi", "message": "must be an integer from 72 to 300 (got 600)"}
    ]


async def test_progress_moves_per_page(http: httpx.AsyncClient, account: Account) -> None:
    # About 4 s of pymupdf4llm on a 2-vCPU VM, so several progress readings fall inside.
    data = pdfs.text_pdf(pages=60)
    job = await create_file_job(
        http,
        account,
        data,
        toolSlug="pdf-to-markdown",
        name="long.pdf",
        content_type="application/pdf",
    )
    assert (await upload(http, job, data)).status_code == 200
    seen: set[int] = set()
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        current = (await http.get(f"/v1/jobs/{job['id']}", headers=account.headers)).json()
        if current["status"] == "running":
            seen.add(current["progress"])
        if current["status"] in ("succeeded", "failed", "canceled"):
            break
        await asyncio.sleep(0.1)
    final = await wait_for_job(http, account, job["id"])
    assert final["status"] == "succeeded", final["error"]
    assert final["progress"] == 100
    assert [value for value in seen if 10 < value < 90], seen
