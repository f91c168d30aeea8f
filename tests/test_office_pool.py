"""The warm LibreOffice pool on real documents: formats, options, failures and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pymupdf
import pytest

from app.activities.office import CSV_IMPORT_FILTER, CSV_IMPORT_OPTIONS
from app.engines.office import OfficeFailed, OfficeJob, OfficePool, OfficeSettings
from app.errors import InputError, JobErrorCode
from tests import documents
from tests.conftest import group_alive

pytestmark = pytest.mark.timeout(180)


def _settings(root: Path, **changes: Any) -> OfficeSettings:
    values: dict[str, Any] = {
        "soffice": "soffice",
        "python": "/usr/bin/python3",
        "pool_size": 1,
        "max_conversions": 50,
        "start_timeout_seconds": 60,
        "conversion_timeout_seconds": 120,
        "profile_root": root,
    }
    values.update(changes)
    return OfficeSettings(**values)


@contextlib.asynccontextmanager
async def _pool(root: Path, **changes: Any) -> AsyncIterator[OfficePool]:
    pool = OfficePool(_settings(root, **changes))
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def shared_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OfficePool]:
    async with _pool(tmp_path_factory.mktemp("office"), pool_size=2) as pool:
        await pool.warm()
        yield pool


@pytest.fixture(scope="module")
def odf_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("odf")
    return {
        "ods": documents.convert_with_soffice(
            documents.make_xlsx(marker="Sheet"), ".xlsx", "ods", folder / "ods"
        ),
        "odp": documents.convert_with_soffice(
            documents.make_pptx(slides=3, marker="Presentation"), ".pptx", "odp", folder / "odp"
        ),
    }


def _job(tmp_path: Path, data: bytes, kind: str, suffix: str, **options: Any) -> OfficeJob:
    source = tmp_path / f"input{suffix}"
    source.write_bytes(data)
    return OfficeJob(source=source, target=tmp_path / "output.pdf", kind=kind, **options)


def _pdf_pages(path: Path) -> list[str]:
    with pymupdf.open(path) as document:
        return [page.get_text() for page in document]


async def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def test_docx_pages_and_text(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_docx(pages=3, marker="Quarterly"), "writer", ".docx")
    result = await shared_pool.convert(job)
    pages = _pdf_pages(job.target)
    assert len(pages) == 3
    assert "Quarterly heading 2" in pages[1]
    assert result.version.startswith("LibreOffice ")
    assert result.kind == "writer"


async def test_pptx_one_page_per_slide(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_pptx(slides=4, marker="Deck"), "impress", ".pptx")
    await shared_pool.convert(job)
    pages = _pdf_pages(job.target)
    assert len(pages) == 4
    assert "Deck slide 4" in pages[3]


async def test_xlsx_cells(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_xlsx(rows=20, marker="Ledger"), "calc", ".xlsx")
    await shared_pool.convert(job)
    text = "".join(_pdf_pages(job.target))
    assert "Ledger1" in text
    assert "120" in text


async def test_csv_utf8(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(
        tmp_path,
        documents.make_csv(marker="Totals"),
        "calc",
        ".csv",
        import_filter=CSV_IMPORT_FILTER,
        import_options=CSV_IMPORT_OPTIONS,
    )
    await shared_pool.convert(job)
    text = "".join(_pdf_pages(job.target))
    assert "Totals" in text
    assert "café 3" in text


async def test_csv_cells_kept_as_text(shared_pool: OfficePool, tmp_path: Path) -> None:
    data = b'formula,zeros,id\n=1+1,007,12345678901234567890\n"=INFO(""system"")",0.50,x\n'
    job = _job(
        tmp_path,
        data,
        "calc",
        ".csv",
        import_filter=CSV_IMPORT_FILTER,
        import_options=CSV_IMPORT_OPTIONS,
    )
    await shared_pool.convert(job)
    text = "".join(_pdf_pages(job.target))
    assert "=1+1" in text
    assert "007" in text
    assert "12345678901234567890" in text
    assert '=INFO("system")' in text
    assert "0.50" in text
    assert "Linux" not in text


async def test_page_range_duplicates_checked_before_export(
    shared_pool: OfficePool, tmp_path: Path
) -> None:
    job = _job(
        tmp_path, documents.make_docx(pages=3), "writer", ".docx", page_range="1-3", max_pages=2
    )
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "3 pages are selected" in caught.value.message
    assert not job.target.exists()


async def test_odt(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_odt(marker="Open"), "writer", ".odt")
    await shared_pool.convert(job)
    assert "Open text in an OpenDocument file." in _pdf_pages(job.target)[0]


async def test_ods_and_odp(
    shared_pool: OfficePool, odf_inputs: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / "ods").mkdir()
    sheet = _job(tmp_path / "ods", odf_inputs["ods"], "calc", ".ods")
    await shared_pool.convert(sheet)
    assert "Sheet2" in "".join(_pdf_pages(sheet.target))

    (tmp_path / "odp").mkdir()
    slides = _job(tmp_path / "odp", odf_inputs["odp"], "impress", ".odp")
    await shared_pool.convert(slides)
    pages = _pdf_pages(slides.target)
    assert len(pages) == 3
    assert "Presentation slide 3" in pages[2]


async def test_office_fonts_replaced_by_metric_twins(
    shared_pool: OfficePool, tmp_path: Path
) -> None:
    # Carlito and Caladea have the metrics of Calibri and Cambria, so line breaks stay put.
    data = documents.make_docx_in_fonts(["Calibri", "Cambria", "Arial", "Times New Roman"])
    job = _job(tmp_path, data, "writer", ".docx")
    await shared_pool.convert(job)
    with pymupdf.open(job.target) as document:
        fonts = {font[3].split("+")[-1] for font in document[0].get_fonts()}
    assert any(name.startswith("Carlito") for name in fonts), fonts
    assert any(name.startswith("Caladea") for name in fonts), fonts
    assert any(name.startswith("LiberationSans") for name in fonts), fonts
    assert any(name.startswith("LiberationSerif") for name in fonts), fonts


async def test_two_conversions_at_once(shared_pool: OfficePool, tmp_path: Path) -> None:
    jobs = []
    for number in (1, 2):
        folder = tmp_path / str(number)
        folder.mkdir()
        data = documents.make_docx(pages=2, marker=f"Parallel{number}")
        jobs.append(_job(folder, data, "writer", ".docx"))
    await asyncio.gather(*(shared_pool.convert(job) for job in jobs))
    for number, job in enumerate(jobs, start=1):
        assert f"Parallel{number} heading 1" in _pdf_pages(job.target)[0]


async def test_page_range(shared_pool: OfficePool, tmp_path: Path) -> None:
    data = documents.make_docx(pages=5, marker="Range")
    job = _job(tmp_path, data, "writer", ".docx", page_range="2-3,5")
    await shared_pool.convert(job)
    pages = _pdf_pages(job.target)
    assert len(pages) == 3
    assert "Range heading 2" in pages[0]
    assert "Range heading 5" in pages[2]


async def test_page_range_past_end(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_docx(pages=2), "writer", ".docx", page_range="7-9")
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code is JobErrorCode.INVALID_OPTIONS
    assert "2 pages" in caught.value.message
    assert not job.target.exists()


async def test_landscape(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_docx(pages=1), "writer", ".docx", landscape=True)
    await shared_pool.convert(job)
    with pymupdf.open(job.target) as document:
        assert document[0].rect.width > document[0].rect.height


async def test_fit_to_width(shared_pool: OfficePool, tmp_path: Path) -> None:
    data = documents.make_xlsx(rows=10, columns=30, marker="Wide")
    split = _job(tmp_path, data, "calc", ".xlsx")
    await shared_pool.convert(split)
    assert "Wide30" not in _pdf_pages(split.target)[0]

    (tmp_path / "fit").mkdir()
    fitted = _job(tmp_path / "fit", data, "calc", ".xlsx", fit_to_width=True)
    await shared_pool.convert(fitted)
    pages = _pdf_pages(fitted.target)
    assert len(pages) == 1
    assert "Wide30" in pages[0]


async def test_encrypted_docx(shared_pool: OfficePool, tmp_path: Path) -> None:
    data = documents.encrypt_ooxml(documents.make_docx())
    job = _job(tmp_path, data, "writer", ".docx")
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code is JobErrorCode.INPUT_ENCRYPTED
    assert not job.target.exists()


async def test_spreadsheet_for_writer(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_xlsx(), "writer", ".xlsx")
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert "spreadsheet" in caught.value.message


async def test_garbage_is_corrupt(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, b"PK\x03\x04" + os.urandom(2000), "writer", ".docx")
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code in (JobErrorCode.INPUT_CORRUPT, JobErrorCode.INPUT_TYPE_MISMATCH)


async def test_page_limit_before_export(shared_pool: OfficePool, tmp_path: Path) -> None:
    job = _job(tmp_path, documents.make_docx(pages=5), "writer", ".docx", max_pages=3)
    with pytest.raises(InputError) as caught:
        await shared_pool.convert(job)
    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert not job.target.exists()


@pytest.mark.parametrize("isolate_network", [True, False])
async def test_remote_content_not_fetched(tmp_path: Path, isolate_network: bool) -> None:
    requests: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.read(1024))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    data = documents.make_odt(marker="Remote", remote_url=f"http://127.0.0.1:{port}")
    job = _job(tmp_path, data, "writer", ".odt")
    try:
        async with _pool(tmp_path / "pool", isolate_network=isolate_network) as pool:
            await pool.convert(job)
            # A default LibreOffice profile requests the linked image while loading.
            await asyncio.sleep(0.5)
    finally:
        server.close()
    assert "Remote text" in _pdf_pages(job.target)[0]
    assert requests == []


@pytest.fixture(scope="module")
def long_docx() -> bytes:
    # About 5 s of LibreOffice layout on a 2-vCPU VM.
    return documents.make_long_docx(pages=1000)


async def test_killed_office_replaced(tmp_path: Path, long_docx: bytes) -> None:
    async with _pool(tmp_path / "pool") as pool:
        await pool.warm()
        (old_group,) = pool.process_ids()
        office_bin = [
            child
            for child in psutil.Process(old_group).children(recursive=True)
            if child.name() == "soffice.bin"
        ]
        assert office_bin

        job = _job(tmp_path, long_docx, "writer", ".docx", max_pages=5000)
        conversion = asyncio.create_task(pool.convert(job))
        await asyncio.sleep(1.0)
        office_bin[0].kill()
        with pytest.raises(OfficeFailed):
            await conversion
        await _wait_until(lambda: not group_alive(old_group))

        (tmp_path / "retry").mkdir()
        retry = _job(tmp_path / "retry", documents.make_docx(marker="After"), "writer", ".docx")
        await pool.convert(retry)
        assert "After heading 1" in _pdf_pages(retry.target)[0]
        assert pool.process_ids() != [old_group]


async def test_cancel_stops_office(tmp_path: Path, long_docx: bytes) -> None:
    async with _pool(tmp_path / "pool") as pool:
        await pool.warm()
        (group,) = pool.process_ids()
        job = _job(tmp_path, long_docx, "writer", ".docx", max_pages=5000)
        conversion = asyncio.create_task(pool.convert(job))
        await asyncio.sleep(1.0)
        conversion.cancel()
        with pytest.raises(asyncio.CancelledError):
            await conversion
        await _wait_until(lambda: not group_alive(group), timeout=5)
        await asyncio.sleep(1.0)
        assert not job.target.exists()


async def test_time_limit_kills_office(tmp_path: Path, long_docx: bytes) -> None:
    async with _pool(tmp_path / "pool", conversion_timeout_seconds=1.0) as pool:
        await pool.warm()
        (group,) = pool.process_ids()
        job = _job(tmp_path, long_docx, "writer", ".docx", max_pages=5000)
        with pytest.raises(OfficeFailed, match="within 1 s"):
            await pool.convert(job)
        await _wait_until(lambda: not group_alive(group), timeout=5)
        assert not job.target.exists()


async def test_restart_after_max_conversions(tmp_path: Path) -> None:
    async with _pool(tmp_path / "pool", max_conversions=2) as pool:
        await pool.warm()
        (first,) = pool.process_ids()
        for number in range(3):
            folder = tmp_path / str(number)
            folder.mkdir()
            await pool.convert(_job(folder, documents.make_docx(pages=1), "writer", ".docx"))
        (current,) = pool.process_ids()
        assert current != first
        await _wait_until(lambda: not group_alive(first))


async def test_close_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    pool = OfficePool(_settings(root))
    await pool.warm()
    (group,) = pool.process_ids()
    await pool.close()
    assert not group_alive(group)
    # Only the empty file whose lock marks this process as the owner of its folders remains.
    # The next worker removes it once this process has ended.
    assert [path.name for path in root.iterdir() if not path.name.startswith(".worker-")] == []
