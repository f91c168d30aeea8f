"""Office documents to PDF through the worker's pool of warm LibreOffice processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pymupdf
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.activities.conversion import conversion_files, pdf_result
from app.catalog import SpreadsheetToPdfOptions, get_tool
from app.engines.office import OfficeFailed, OfficeJob, OfficePool
from app.errors import InputError, JobErrorCode
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult

# LibreOffice application that each tool's documents must open in.
DOCUMENT_KINDS = {"word-to-pdf": "writer", "slides-to-pdf": "impress", "spreadsheet-to-pdf": "calc"}

CSV_IMPORT_FILTER = "Text - txt - csv (StarCalc)"
# Comma-separated, double-quoted, UTF-8 (code 76), from line 1, numbers and dates detected.
CSV_IMPORT_OPTIONS = "44,34,76,1,,0,false,true,false,false,false"


def count_pdf_pages(path: Path) -> int:
    """Return the page count of the PDF at ``path``, which LibreOffice has just written."""
    try:
        with pymupdf.open(path) as document:  # type: ignore[no-untyped-call]
            return int(document.page_count)
    except (pymupdf.FileDataError, RuntimeError) as err:
        raise OfficeFailed(f"LibreOffice wrote a PDF that cannot be read: {err}") from err


class OfficeActivities:
    def __init__(self, store: BlobStore, work_dir: Path, pool: OfficePool) -> None:
        self.store = store
        self.work_dir = work_dir
        self.pool = pool

    @activity.defn(name=names.CONVERT_OFFICE_TO_PDF)
    async def convert_office_to_pdf(self, request: ConvertRequest) -> ConvertResult:
        kind = DOCUMENT_KINDS[request.tool_slug]
        # Every office tool's options are a subset of the spreadsheet tool's, with the same
        # defaults, and the API has already rejected options that a tool does not take.
        options = SpreadsheetToPdfOptions.model_validate(request.options)
        tool = get_tool(request.tool_slug)
        max_pages = tool.limits.max_pages if tool and tool.limits else None
        async with conversion_files(self.store, self.work_dir, request, "output.pdf") as files:
            # The API accepts text/csv only with a .csv name, so the name identifies CSV input.
            is_csv = (request.input_name or "").lower().endswith(".csv")
            job = OfficeJob(
                source=files.source,
                target=files.target,
                kind=kind,
                import_filter=CSV_IMPORT_FILTER if is_csv else None,
                import_options=CSV_IMPORT_OPTIONS if is_csv else None,
                page_range=options.page_range,
                landscape=options.landscape,
                fit_to_width=options.fit_to_width,
                single_page_sheets=options.single_page_sheets,
                pdf_a=options.pdf_a,
                max_pages=max_pages,
            )
            try:
                result = await self.pool.convert(job, on_started=files.started)
            except OfficeFailed as err:
                activity.logger.warning(
                    "LibreOffice conversion failed: %s",
                    err,
                    extra={"job_id": request.job_id, "attempt": activity.info().attempt},
                )
                raise ApplicationError(str(err), type=JobErrorCode.ENGINE_FAILED.value) from err
            page_count = await asyncio.to_thread(count_pdf_pages, files.target)
            if max_pages is not None and page_count > max_pages:
                raise InputError(
                    JobErrorCode.INPUT_TOO_LARGE,
                    f"The PDF has {page_count} pages; this tool produces at most {max_pages}. "
                    "Convert a part of the document with the pageRange option.",
                )

        return pdf_result(request, files, page_count, result.version)
