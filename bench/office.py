"""Office documents to PDF: jobs through the service against LibreOffice run directly.

For a 3-page DOCX, a 20-slide PPTX and a 2,000 x 8 XLSX, each measured as a median:

- **job**: create, upload, wait for ``succeeded`` and download the PDF, over HTTP;
- **cold**: ``soffice --headless --convert-to pdf`` in a new process, with a profile that an
  earlier run has already created, as a service without a pool would run it;
- **warm**: the same conversion on a warm pool in this process, the engine the service uses.

It prints job/cold (the speed-up a warm pool gives end to end) and job minus warm (the
service's own overhead).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.engines.office import OfficeJob, OfficePool, OfficeSettings
from bench.service import FileInput, create_job, download, upload, wait_succeeded
from tests import documents


def _inputs() -> list[tuple[FileInput, str]]:
    return [
        (
            FileInput(
                "word-to-pdf", "report.docx", documents.DOCX_TYPE, documents.make_docx(pages=3)
            ),
            "writer",
        ),
        (
            FileInput(
                "slides-to-pdf", "deck.pptx", documents.PPTX_TYPE, documents.make_pptx(slides=20)
            ),
            "impress",
        ),
        (
            FileInput(
                "spreadsheet-to-pdf",
                "table.xlsx",
                documents.XLSX_TYPE,
                documents.make_xlsx(rows=2_000, columns=8),
            ),
            "calc",
        ),
    ]


async def _time_job(client: httpx.AsyncClient, headers: dict[str, str], source: FileInput) -> float:
    started = time.perf_counter()
    job = await create_job(client, headers, source)
    await upload(client, job, source.payload)
    await wait_succeeded(client, headers, job["id"])
    await download(client, headers, job["id"])
    return time.perf_counter() - started


def _time_cold(source: FileInput, folder: Path) -> float:
    started = time.perf_counter()
    documents.convert_with_soffice(source.payload, Path(source.name).suffix, "pdf", folder)
    return time.perf_counter() - started


async def _time_warm(pool: OfficePool, source: Path, target: Path, kind: str) -> float:
    started = time.perf_counter()
    await pool.convert(OfficeJob(source=source, target=target, kind=kind))
    return time.perf_counter() - started


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


async def measure(api_url: str, key: str, runs: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with tempfile.TemporaryDirectory(prefix="worklane-bench-office-") as tmp:
        folder = Path(tmp)
        pool = OfficePool(
            OfficeSettings(
                soffice="soffice",
                python="/usr/bin/python3",
                pool_size=1,
                max_conversions=1_000,
                start_timeout_seconds=60,
                conversion_timeout_seconds=300,
                profile_root=folder / "pool",
            )
        )
        try:
            async with httpx.AsyncClient(base_url=api_url, timeout=300) as client:
                for source, kind in _inputs():
                    path = folder / source.name
                    path.write_bytes(source.payload)
                    # Warm-up: each service process loads the document's LibreOffice module,
                    # and the cold command creates its profile, on first use.
                    for _ in range(3):
                        await _time_job(client, headers, source)
                    await _time_warm(pool, path, folder / "warm.pdf", kind)
                    _time_cold(source, folder / "cold")

                    job = statistics.median(
                        [await _time_job(client, headers, source) for _ in range(runs)]
                    )
                    warm = statistics.median(
                        [
                            await _time_warm(pool, path, folder / "warm.pdf", kind)
                            for _ in range(runs)
                        ]
                    )
                    cold = statistics.median(
                        [_time_cold(source, folder / "cold") for _ in range(runs)]
                    )
                    print(
                        f"{source.name:>12}: job {_ms(job)}, cold soffice {_ms(cold)}, "
                        f"warm direct {_ms(warm)}; cold/job {cold / job:5.2f}x "
                        f"(target >= 4 for the DOCX), job - warm {_ms(job - warm)} "
                        f"(target < 150 ms), runs {runs}"
                    )
        finally:
            await pool.close()
