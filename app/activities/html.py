"""HTML to PDF with WeasyPrint, in a child process that a cancel kills."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any

from temporalio import activity

from app.activities.conversion import conversion_files, pdf_result
from app.catalog import HtmlToPdfOptions, get_tool
from app.engines import html
from app.engines.isolated import run_isolated
from app.engines.sniff import SNIFF_BYTES, sniff_content_type
from app.errors import InputError, JobErrorCode
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult

# A charset declared in the document's head, as HTML's encoding sniffing reads it.
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decode_html(data: bytes) -> str:
    """Decode an uploaded HTML file: by its byte-order mark, as UTF-8, then by its declared
    charset; binary data fails as a type mismatch."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise InputError(
                JobErrorCode.INPUT_CORRUPT,
                "The HTML file has a UTF-16 byte-order mark but "
                "is not valid UTF-16. Save it as UTF-8.",
            ) from err
    detected = sniff_content_type(data[:SNIFF_BYTES])
    if (detected is not None and detected != "text/html") or b"\x00" in data:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file was declared as text/html but its bytes are "
            f"{detected or 'binary data'}. Upload an HTML document.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    # Windows-1252 decodes every byte, the way browsers treat unlabeled legacy pages.
    return data.decode("cp1252", errors="replace")


def html_of_input(kind: str, data: bytes) -> str:
    if kind == "text":
        # The API stored input.text as UTF-8. HTML parsers read a NUL character as U+FFFD,
        # so it is replaced here instead of failing the job as binary data.
        return data.decode("utf-8").replace("\x00", "\ufffd")
    if kind != "json":
        return decode_html(data)
    try:
        payload: Any = json.loads(data)
    except ValueError as err:
        raise InputError(JobErrorCode.INPUT_CORRUPT, "input.json is not valid JSON.") from err
    if not isinstance(payload, dict):
        raise InputError(JobErrorCode.INPUT_CORRUPT, "input.json must be a JSON object.")
    return html.html_from_json(payload)


class HtmlActivities:
    def __init__(self, store: BlobStore, work_dir: Path) -> None:
        self.store = store
        self.work_dir = work_dir

    @activity.defn(name=names.RENDER_HTML)
    async def render_html(self, request: ConvertRequest) -> ConvertResult:
        options = HtmlToPdfOptions.model_validate(request.options)
        tool = get_tool(request.tool_slug)
        max_pages = tool.limits.max_pages if tool and tool.limits and tool.limits.max_pages else 500
        async with conversion_files(self.store, self.work_dir, request, "output.pdf") as files:
            document = html_of_input(request.input_kind, files.source.read_bytes())
            result = await run_isolated(
                html.render_html_to_pdf,
                document,
                files.target,
                html.PdfOptions(
                    page_size=options.page_size,
                    landscape=options.landscape,
                    margin=options.margin,
                    print_background=options.print_background,
                ),
                max_pages=max_pages,
                on_started=files.started,
            )

        return pdf_result(request, files, result.page_count, result.engine_version)
