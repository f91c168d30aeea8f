"""PDF tools with PyMuPDF, each in a child process that a cancel kills, with progress per page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from app.activities.conversion import conversion_files, file_result
from app.catalog import PageRangeOptions, PdfToImagesOptions, get_tool
from app.engines import pdf
from app.engines.isolated import run_isolated
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult


class PdfActivities:
    def __init__(self, store: BlobStore, work_dir: Path) -> None:
        self.store = store
        self.work_dir = work_dir

    async def _convert(
        self,
        request: ConvertRequest,
        engine: Callable[..., dict[str, Any]],
        output_name: str,
        content_type: str,
        **engine_options: Any,
    ) -> ConvertResult:
        options = PageRangeOptions.model_validate({"page_range": request.options.get("pageRange")})
        tool = get_tool(request.tool_slug)
        max_pages = tool.limits.max_pages if tool and tool.limits else None
        async with conversion_files(self.store, self.work_dir, request, output_name) as files:
            metadata = await run_isolated(
                engine,
                files.source,
                files.target,
                page_ranges=options.page_ranges(),
                max_pages=max_pages,
                on_started=files.started,
                on_progress=files.engine_progress,
                **engine_options,
            )

        return file_result(request, files, content_type, metadata)

    @activity.defn(name=names.PDF_TO_IMAGES_ZIP)
    async def pdf_to_images_zip(self, request: ConvertRequest) -> ConvertResult:
        options = PdfToImagesOptions.model_validate(request.options)
        return await self._convert(
            request, pdf.pdf_to_images_zip, "output.zip", "application/zip", dpi=options.dpi
        )

    @activity.defn(name=names.PDF_TO_TEXT)
    async def pdf_to_text(self, request: ConvertRequest) -> ConvertResult:
        return await self._convert(request, pdf.pdf_to_text, "output.txt", "text/plain")

    @activity.defn(name=names.PDF_TO_MARKDOWN)
    async def pdf_to_markdown(self, request: ConvertRequest) -> ConvertResult:
        return await self._convert(request, pdf.pdf_to_markdown, "output.md", "text/markdown")

    @activity.defn(name=names.PDF_TO_DOCX)
    async def pdf_to_docx(self, request: ConvertRequest) -> ConvertResult:
        return await self._convert(
            request,
            pdf.pdf_to_docx,
            "output.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
