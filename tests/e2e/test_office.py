"""word-to-pdf, slides-to-pdf and spreadsheet-to-pdf over HTTP, on the worker's LibreOffice pool."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psutil
import pytest
from temporalio.client import Client

from tests import documents
from tests.conftest import group_alive, wait_for_engine_pid
from tests.e2e.conftest import (
    Account,
    Stack,
    create_file_job,
    download_pdf,
    run_file_job,
    upload,
    wait_for_job,
)

pytestmark = pytest.mark.timeout(240)

CSV_TYPE = "text/csv"

SAMPLE_INPUTS = {
    "word-to-pdf": ("file.docx", documents.DOCX_TYPE),
    "slides-to-pdf": ("deck.pptx", documents.PPTX_TYPE),
    "spreadsheet-to-pdf": ("sheet.xlsx", documents.XLSX_TYPE),
}


async def _convert(
    http: httpx.AsyncClient,
    account: Account,
    tool: str,
    data: bytes,
    name: str,
    content_type: str,
    **options: Any,
) -> dict[str, Any]:
    return await run_file_job(
        http,
        account,
        data,
        toolSlug=tool,
        name=name,
        content_type=content_type,
        options=options,
    )


@pytest.mark.parametrize(
    ("tool", "name", "content_type", "data", "pages", "text"),
    [
        (
            "word-to-pdf",
            "report.docx",
            documents.DOCX_TYPE,
            documents.make_docx(pages=3, marker="Report"),
            3,
            "Report heading 3",
        ),
        (
            "word-to-pdf",
            "letter.odt",
            documents.ODT_TYPE,
            documents.make_odt(marker="Letter"),
            1,
            "Letter text",
        ),
        (
            "slides-to-pdf",
            "deck.pptx",
            documents.PPTX_TYPE,
            documents.make_pptx(slides=4, marker="Deck"),
            4,
            "Deck slide 4",
        ),
        (
            "spreadsheet-to-pdf",
            "budget.xlsx",
            documents.XLSX_TYPE,
            documents.make_xlsx(rows=12, marker="Budget"),
            1,
            "Budget3",
        ),
        (
            "spreadsheet-to-pdf",
            "orders.csv",
            CSV_TYPE,
            documents.make_csv(marker="Orders"),
            1,
            "café 5",
        ),
    ],
)
async def test_document_to_pdf(
    http: httpx.AsyncClient,
    account: Account,
    tool: str,
    name: str,
    content_type: str,
    data: bytes,
    pages: int,
    text: str,
) -> None:
    job = await _convert(http, account, tool, data, name, content_type)
    assert job["status"] == "succeeded", job["error"]
    output = job["output"]
    assert output["fileName"] == name.rsplit(".", 1)[0] + ".pdf"
    assert output["contentType"] == "application/pdf"
    assert output["metadata"]["pageCount"] == pages
    assert output["metadata"]["bytes"] == output["sizeBytes"]
    assert output["metadata"]["engineVersion"].startswith("LibreOffice 7")

    pdf = await download_pdf(http, account, job["id"])
    assert pdf.page_count == pages
    assert text in "".join(pdf[number].get_text() for number in range(pdf.page_count))


async def test_csv_named_and_kept_as_text(http: httpx.AsyncClient, account: Account) -> None:
    data = b"code,amount\n007,=1+1\n"
    job = await _convert(http, account, "spreadsheet-to-pdf", data, "orders.csv", CSV_TYPE)
    assert job["status"] == "succeeded", job["error"]
    pdf = await download_pdf(http, account, job["id"])
    text = pdf[0].get_text()
    assert "orders" in text
    assert "007" in text
    assert "=1+1" in text


async def test_filename_field_hides_data_dir(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    data = documents.make_docx_with_filename_field()
    job = await _convert(http, account, "word-to-pdf", data, "report.docx", documents.DOCX_TYPE)
    assert job["status"] == "succeeded", job["error"]
    text = (await download_pdf(http, account, job["id"]))[0].get_text()
    assert "report.docx" in text
    assert str(stack.dev.data_dir.resolve()) not in text
    assert "worklane-" in text


async def test_page_range_and_landscape(http: httpx.AsyncClient, account: Account) -> None:
    data = documents.make_docx(pages=4, marker="Chapter")
    job = await _convert(
        http,
        account,
        "word-to-pdf",
        data,
        "book.docx",
        documents.DOCX_TYPE,
        pageRange="2,4",
        landscape=True,
    )
    assert job["status"] == "succeeded", job["error"]
    pdf = await download_pdf(http, account, job["id"])
    assert pdf.page_count == 2
    assert "Chapter heading 4" in pdf[1].get_text()
    assert pdf[0].rect.width > pdf[0].rect.height


async def test_page_range_past_end_fails(http: httpx.AsyncClient, account: Account) -> None:
    data = documents.make_docx(pages=2)
    job = await _convert(
        http, account, "word-to-pdf", data, "short.docx", documents.DOCX_TYPE, pageRange="5-6"
    )
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_options"
    assert job["error"]["retryable"] is False
    assert "pageRange" in job["error"]["message"]


@pytest.mark.parametrize(
    ("tool", "options", "field"),
    [
        ("word-to-pdf", {"pageRange": "3-1"}, "input.options.pageRange"),
        ("word-to-pdf", {"pageRange": "first"}, "input.options.pageRange"),
        ("slides-to-pdf", {"landscape": True}, "input.options.landscape"),
        ("word-to-pdf", {"fitToWidth": True}, "input.options.fitToWidth"),
        (
            "spreadsheet-to-pdf",
            {"fitToWidth": True, "singlePageSheets": True},
            "input.options.singlePageSheets",
        ),
    ],
)
async def test_invalid_options_rejected(
    http: httpx.AsyncClient, account: Account, tool: str, options: dict[str, Any], field: str
) -> None:
    name, content_type = SAMPLE_INPUTS[tool]
    body = {
        "toolSlug": tool,
        "input": {
            "kind": "file",
            "name": name,
            "contentType": content_type,
            "sizeBytes": 1000,
            "options": options,
        },
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_job"
    assert [item["field"] for item in error["details"]["fields"]] == [field]


async def test_encrypted_docx_fails_and_refunds(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account(balance=10)
    data = documents.encrypt_ooxml(documents.make_docx())
    job = await _convert(http, account, "word-to-pdf", data, "secret.docx", documents.DOCX_TYPE)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_encrypted"
    assert "password" in job["error"]["message"]
    assert job["attempt"] == 1
    balance = await http.get("/v1/credits", headers=account.headers)
    assert balance.json()["balance"] == 10


async def test_spreadsheet_declared_as_docx(http: httpx.AsyncClient, account: Account) -> None:
    data = documents.make_xlsx()
    job = await _convert(http, account, "word-to-pdf", data, "sheet.docx", documents.DOCX_TYPE)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_type_mismatch"
    assert documents.XLSX_TYPE in job["error"]["message"]


async def test_two_jobs_at_once(http: httpx.AsyncClient, account: Account) -> None:
    inputs = [documents.make_docx(pages=2, marker=f"Twin{number}") for number in (1, 2)]
    jobs = await asyncio.gather(
        *(
            _convert(http, account, "word-to-pdf", data, "twin.docx", documents.DOCX_TYPE)
            for data in inputs
        )
    )
    for number, job in enumerate(jobs, start=1):
        assert job["status"] == "succeeded", job["error"]
        pdf = await download_pdf(http, account, job["id"])
        assert f"Twin{number} heading 1" in pdf[0].get_text()


@pytest.fixture(scope="module")
def long_docx() -> bytes:
    # About 3 s of LibreOffice layout on a 2-vCPU VM, and within the 1,000-page limit.
    return documents.make_long_docx(pages=600)


async def _start_long_job(
    http: httpx.AsyncClient, account: Account, temporal: Client, data: bytes
) -> tuple[dict[str, Any], int]:
    job = await create_file_job(
        http,
        account,
        data,
        toolSlug="word-to-pdf",
        name="long.docx",
        content_type=documents.DOCX_TYPE,
    )
    assert (await upload(http, job, data)).status_code == 200
    group = await wait_for_engine_pid(temporal.get_workflow_handle(job["id"]))
    return job, group


async def test_killed_office_retried(
    http: httpx.AsyncClient, account: Account, temporal: Client, long_docx: bytes
) -> None:
    job, group = await _start_long_job(http, account, temporal, long_docx)
    office = [
        child
        for child in psutil.Process(group).children(recursive=True)
        if child.name() == "soffice.bin"
    ]
    assert office, "the engine process group has no soffice.bin"
    await asyncio.sleep(0.5)
    office[0].kill()

    finished = await wait_for_job(http, account, job["id"], timeout=120)
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["attempt"] == 2
    assert finished["output"]["metadata"]["pageCount"] >= 600
    assert not group_alive(group)


async def test_cancel_stops_office(
    stack: Stack,
    http: httpx.AsyncClient,
    account: Account,
    temporal: Client,
    long_docx: bytes,
) -> None:
    job, group = await _start_long_job(http, account, temporal, long_docx)
    await asyncio.sleep(0.5)
    canceled = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"

    deadline = asyncio.get_running_loop().time() + 5
    while group_alive(group):
        assert asyncio.get_running_loop().time() < deadline, "LibreOffice outlived the cancel"
        await asyncio.sleep(0.05)
    final = await wait_for_job(http, account, job["id"])
    assert final["output"] is None
    work_dir = stack.dev.data_dir / "work"
    assert not [path for path in work_dir.iterdir() if path.name.startswith(job["id"])]
    assert [key for key in stack.object_keys(job["id"]) if "/output-" in key] == []


async def test_deadline_stops_office(
    http: httpx.AsyncClient, account: Account, temporal: Client
) -> None:
    # Laying out 6,000 pages takes LibreOffice about 15 s on a 2-vCPU VM, past the deadline.
    data = documents.make_long_docx(pages=6_000)
    job = await create_file_job(
        http,
        account,
        data,
        toolSlug="word-to-pdf",
        name="huge.docx",
        content_type=documents.DOCX_TYPE,
        options={"pageRange": "1-1000"},
        deadlineSeconds=10,
        maxAttempts=1,
    )
    assert (await upload(http, job, data)).status_code == 200
    group = await wait_for_engine_pid(temporal.get_workflow_handle(job["id"]))

    finished = await wait_for_job(http, account, job["id"], timeout=60)
    assert finished["status"] == "failed"
    assert finished["error"]["code"] == "deadline_exceeded"
    assert finished["output"] is None
    deadline = asyncio.get_running_loop().time() + 5
    while group_alive(group):
        assert asyncio.get_running_loop().time() < deadline, "LibreOffice outlived the deadline"
        await asyncio.sleep(0.05)
