"""Office documents to PDF through the worker's pool of warm LibreOffice processes."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pymupdf
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.activities.conversion import ConversionFiles, conversion_files, pdf_result
from app.catalog import SpreadsheetToPdfOptions, format_page_ranges, get_tool
from app.engines.office import OfficeFailed, OfficeJob, OfficePool, OfficeResult
from app.errors import InputError, JobErrorCode
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult

# LibreOffice application that each tool's documents must open in.
DOCUMENT_KINDS = {"word-to-pdf": "writer", "slides-to-pdf": "impress", "spreadsheet-to-pdf": "calc"}

CSV_IMPORT_FILTER = "Text - txt - csv (StarCalc)"
# Every column of a CSV file is imported as text (format code 2), so cells come out exactly as
# written: no formula such as =INFO("system") runs, and 007 or a 20-digit id keeps its digits.
# 1,024 columns is the width of a LibreOffice 7.4 sheet.
_CSV_TEXT_COLUMNS = "/".join(f"{column}/2" for column in range(1, 1025))
# Comma-separated, double-quoted, UTF-8 (code 76), from line 1, then the column formats.
CSV_IMPORT_OPTIONS = f"44,34,76,1,{_CSV_TEXT_COLUMNS},0,false,false,false,false,false"

_MAX_NAME_BYTES = 200
"""Maximum length, in UTF-8 bytes, of an input file name given to LibreOffice.

A longer name is replaced by a generic one.
"""


def document_name(input_name: str | None, fallback: str) -> str:
    """Return the name LibreOffice opens the input under, from the client's file name.

    LibreOffice shows the name in places such as the sheet name of a CSV file and the
    FILENAME field. The API has already rejected names with paths or control characters.
    """
    if not input_name or len(input_name.encode("utf-8")) > _MAX_NAME_BYTES:
        return fallback
    return input_name


@contextlib.contextmanager
def neutral_path(source: Path, name: str) -> Iterator[Path]:
    """Link ``source`` under ``name`` in a new folder of the system's temporary directory.

    A document's FILENAME field with the path option prints the folder, so LibreOffice opens
    the input there instead of in the worker's data directory.
    """
    with tempfile.TemporaryDirectory(prefix="worklane-") as folder:
        link = Path(folder) / name
        link.symlink_to(source.resolve())
        yield link


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
        tool = get_tool(request.tool_slug)
        max_pages = tool.limits.max_pages if tool and tool.limits else None
        async with conversion_files(self.store, self.work_dir, request, "output.pdf") as files:
            suffix = Path(request.input_name or "").suffix
            name = document_name(request.input_name, f"document{suffix}")
            with neutral_path(files.source, name) as source:
                result = await self._convert(request, source, files, max_pages)

            page_count = await asyncio.to_thread(count_pdf_pages, files.target)
            if max_pages is not None and page_count > max_pages:
                raise InputError(
                    JobErrorCode.INPUT_TOO_LARGE,
                    f"The PDF has {page_count} pages; this tool produces at most {max_pages}. "
                    "Convert a part of the document with the pageRange option.",
                )

        return pdf_result(request, files, page_count, result.version)

    async def _convert(
        self, request: ConvertRequest, source: Path, files: ConversionFiles, max_pages: int | None
    ) -> OfficeResult:
        # Every office tool's options are a subset of the spreadsheet tool's, with the same
        # defaults, and the API has already rejected options that a tool does not take.
        options = SpreadsheetToPdfOptions.model_validate(request.options)
        ranges = options.page_ranges()
        # The API accepts text/csv only with a .csv name, so the name identifies CSV input.
        is_csv = source.suffix.lower() == ".csv"
        job = OfficeJob(
            source=source,
            target=files.target,
            kind=DOCUMENT_KINDS[request.tool_slug],
            import_filter=CSV_IMPORT_FILTER if is_csv else None,
            import_options=CSV_IMPORT_OPTIONS if is_csv else None,
            page_range=format_page_ranges(ranges) if ranges else None,
            landscape=options.landscape,
            fit_to_width=options.fit_to_width,
            single_page_sheets=options.single_page_sheets,
            pdf_a=options.pdf_a,
            max_pages=max_pages,
        )
        try:
            return await self.pool.convert(job, on_started=files.started)
        except OfficeFailed as err:
            activity.logger.warning(
                "LibreOffice conversion failed: %s",
                err,
                extra={"job_id": request.job_id, "attempt": activity.info().attempt},
            )
            raise ApplicationError(str(err), type=JobErrorCode.ENGINE_FAILED.value) from err
