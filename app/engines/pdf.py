"""PDF tools on PyMuPDF: pages to PNG in a ZIP, text, Markdown and a text-only DOCX.

Each conversion function runs in a child process (``run_isolated``), opens the PDF with
``open_pdf``, which turns a password, damage beyond repair or a page count over the tool's
limit into an InputError, and calls ``report_progress`` after each page.
"""

from __future__ import annotations

import collections
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docx
import pymupdf
import pymupdf4llm
from pymupdf4llm.helpers.pymupdf_rag import IdentifyHeaders

from app.engines.sniff import sniff_content_type
from app.errors import InputError, JobErrorCode

# pymupdf4llm 2.0 turns on its layout model when it is installed, which PyMuPDF 2.0 does. The
# plain mode took 5.2 s and 148 MB for a 50-page PDF against 10 s and 445 MB with the model
# (2-vCPU VM), and it finds headings by font size, which this tool reports.
pymupdf4llm.use_layout(False)

ProgressCallback = Callable[[float], None]

MAX_PAGE_PIXELS = 50_000_000
"""Largest page image, in pixels: about 200 MB of RGBA while it is encoded."""
MAX_TOTAL_PIXELS = 1_000_000_000
"""Largest sum of all page images of one job, in pixels."""
MIN_DPI = 72
"""Lowest resolution that pdf-to-images-zip accepts."""

# Characters that XML 1.0 forbids, which python-docx rejects: C0 controls other than tab,
# line feed and carriage return, lone surrogates, and U+FFFE and U+FFFF.
_HEADER_SEARCH_BYTES = 1024

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _no_progress(_fraction: float) -> None:
    pass


@dataclass(frozen=True)
class OpenedPdf:
    document: pymupdf.Document
    pages: list[int]
    """Zero-based numbers of the selected pages, in order."""
    repaired: bool

    def base_metadata(self) -> dict[str, Any]:
        return {
            "pageCount": len(self.pages),
            "documentPages": self.document.page_count,
            "repaired": self.repaired,
        }


def open_pdf(
    path: Path, page_ranges: list[tuple[int, int]] | None, max_pages: int | None
) -> OpenedPdf:
    """Open the PDF at ``path`` and select the pages of ``page_ranges`` (1-based, inclusive).

    A PDF that restricts only printing or copying opens; one that needs a password to open
    raises ``input_encrypted``. Pages past the end are skipped, and a selection with no
    page raises ``invalid_options``. More than ``max_pages`` selected pages raise
    ``input_too_large``.
    """
    _check_pdf_header(path)
    try:
        document = pymupdf.open(path, filetype="pdf")
        if document.needs_pass and not document.authenticate(""):
            raise InputError(
                JobErrorCode.INPUT_ENCRYPTED,
                "The PDF needs a password to open. Remove the password and upload it again.",
            )
        page_count = document.page_count
    except (pymupdf.FileDataError, RuntimeError, ValueError) as err:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            "The PDF is too damaged to repair. Upload the PDF again.",
        ) from err
    if page_count == 0:
        raise InputError(JobErrorCode.INPUT_CORRUPT, "The PDF has no pages.")

    pages = _select_pages(document.page_count, page_ranges)
    if max_pages is not None and len(pages) > max_pages:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"{len(pages)} pages are selected; this tool converts at most {max_pages}. "
            "Select fewer pages with the pageRange option.",
        )
    return OpenedPdf(document, pages, bool(document.is_repaired))


def _check_pdf_header(path: Path) -> None:
    """Reject a file without the ``%PDF-`` header, which PyMuPDF would open as its real format.

    PDF readers accept bytes before the header, so the first kilobyte is searched.
    """
    with path.open("rb") as file:
        head = file.read(_HEADER_SEARCH_BYTES)
    if b"%PDF-" in head:
        return
    detected = sniff_content_type(head)
    if detected is not None:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file was declared as application/pdf but its bytes are {detected}. "
            "Upload a PDF, or use the tool for that type.",
        )
    raise InputError(
        JobErrorCode.INPUT_CORRUPT,
        "The file is not a PDF: it has no %PDF- header. Upload the PDF itself.",
    )


def _select_pages(page_count: int, page_ranges: list[tuple[int, int]] | None) -> list[int]:
    if page_ranges is None:
        return list(range(page_count))
    selected: list[int] = []
    for first, last in page_ranges:
        selected.extend(range(first - 1, min(last, page_count)))
    if not selected:
        raise InputError(
            JobErrorCode.INVALID_OPTIONS,
            f"pageRange selects no page of the document; it has {page_count} pages. "
            "Choose pages that exist.",
        )
    return selected


def _each_page(opened: OpenedPdf, report: ProgressCallback) -> Iterator[tuple[int, pymupdf.Page]]:
    """Yield (1-based number, page) for the selected pages, reporting progress after each."""
    total = len(opened.pages)
    for done, number in enumerate(opened.pages):
        yield number + 1, opened.document[number]
        report((done + 1) / total)


# Pages to PNG images in a ZIP file


def pdf_to_images_zip(
    source: Path,
    target: Path,
    *,
    page_ranges: list[tuple[int, int]] | None,
    dpi: int,
    max_pages: int | None,
    report_progress: ProgressCallback = _no_progress,
) -> dict[str, Any]:
    """Render the selected pages to PNG at ``dpi`` and write them to a ZIP file at ``target``.

    Pages are rendered as a viewer shows them, with their rotation applied. Every page's
    pixel size is checked before the first one is rendered, and each PNG is written to the
    ZIP as soon as it is encoded, so at most one page image is in memory.
    """
    opened = open_pdf(source, page_ranges, max_pages)
    scale = dpi / 72
    sizes = []
    for number in opened.pages:
        rect = opened.document[number].rect
        sizes.append((math.ceil(rect.width * scale), math.ceil(rect.height * scale)))
    _check_pixels(sizes, opened.pages, dpi)

    digits = max(3, len(str(opened.document.page_count)))
    pages: list[dict[str, int]] = []
    # PNG data is already compressed, so the ZIP stores it as it is.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, page in _each_page(opened, report_progress):
            pixmap = page.get_pixmap(dpi=dpi, alpha=False)
            archive.writestr(f"page-{number:0{digits}d}.png", pixmap.tobytes("png"))
            pages.append({"page": number, "width": pixmap.width, "height": pixmap.height})
    return {**opened.base_metadata(), "dpi": dpi, "pages": pages, "zipBytes": target.stat().st_size}


def _check_pixels(sizes: list[tuple[int, int]], pages: list[int], dpi: int) -> None:
    total = 0
    for (width, height), number in zip(sizes, pages, strict=True):
        if width * height > MAX_PAGE_PIXELS:
            remedy = (
                "Choose a lower dpi." if dpi > MIN_DPI else "Leave this page out with pageRange."
            )
            raise InputError(
                JobErrorCode.INPUT_TOO_LARGE,
                f"Page {number + 1} would be {width}x{height} pixels at {dpi} dpi, over the "
                f"limit of {MAX_PAGE_PIXELS:,} pixels per page. {remedy}",
            )
        total += width * height
    if total > MAX_TOTAL_PIXELS:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The selected pages would be {total:,} pixels at {dpi} dpi, over the limit of "
            f"{MAX_TOTAL_PIXELS:,} pixels per job. Choose a lower dpi or fewer pages.",
        )


# Text


@dataclass
class TextLayerSurvey:
    """Survey of the text layer of the selected pages, for the tools' metadata."""

    page_count: int
    without_text: list[int] = field(default_factory=list)
    """1-based numbers of pages that show images but have no text: likely scanned."""
    blank: list[int] = field(default_factory=list)
    """1-based numbers of pages with neither text nor images."""
    characters: list[int] = field(default_factory=list)

    def add(self, number: int, page: pymupdf.Page, text: str) -> None:
        count = len(text.strip())
        self.characters.append(count)
        if count:
            return
        if page.get_images(full=False) or page.get_drawings():
            self.without_text.append(number)
        else:
            self.blank.append(number)

    @property
    def text_layer(self) -> str:
        with_content = self.page_count - len(self.blank)
        if with_content == 0:
            return "none"
        if not self.without_text:
            return "full"
        if len(self.without_text) >= with_content:
            return "none"
        return "partial"

    def metadata(self) -> dict[str, Any]:
        return {
            "ocr": False,
            "textLayer": self.text_layer,
            "pagesWithoutText": self.without_text,
            "pagesWithoutTextShare": round(len(self.without_text) / self.page_count, 3),
            "blankPages": self.blank,
            "characters": sum(self.characters),
        }


def pdf_to_text(
    source: Path,
    target: Path,
    *,
    page_ranges: list[tuple[int, int]] | None,
    max_pages: int | None,
    report_progress: ProgressCallback = _no_progress,
) -> dict[str, Any]:
    """Write the text of the selected pages to ``target`` as UTF-8, pages split by form feeds.

    Text comes in PyMuPDF's reading order (blocks sorted top to bottom, left to right).
    No OCR runs, so pages without a text layer come out empty and are listed in the metadata.
    """
    opened = open_pdf(source, page_ranges, max_pages)
    survey = TextLayerSurvey(len(opened.pages))
    with target.open("w", encoding="utf-8", newline="") as output:
        for index, (number, page) in enumerate(_each_page(opened, report_progress)):
            text = page.get_text("text", sort=True)
            survey.add(number, page, text)
            if index:
                output.write("\f")
            output.write(text)
    return {**opened.base_metadata(), **survey.metadata()}


# Markdown


_MARKDOWN_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_MARKDOWN_TABLE_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+\s*$", re.MULTILINE)


def pdf_to_markdown(
    source: Path,
    target: Path,
    *,
    page_ranges: list[tuple[int, int]] | None,
    max_pages: int | None,
    report_progress: ProgressCallback = _no_progress,
) -> dict[str, Any]:
    """Write the selected pages as Markdown to ``target``, with a grade of how well it went.

    NOTE: pymupdf4llm 2.0 leaves out text that runs vertically as displayed, such as the
    text of a page rotated by 90 degrees, which pdf-to-text keeps. Such pages are listed in
    ``pagesWithLostText`` and lower the grade. It can also take a heading that sits just
    above a ruled table for the table's header row.
    """
    opened = open_pdf(source, page_ranges, max_pages)
    survey = TextLayerSurvey(len(opened.pages))
    # Heading levels come from font sizes across all selected pages, so they are found once
    # and shared by the page-by-page conversion, which then costs what one call would.
    headers = IdentifyHeaders(opened.document, pages=opened.pages)
    chunks: list[str] = []
    lost_text: list[int] = []
    for number, page in _each_page(opened, report_progress):
        text = page.get_text("text")
        survey.add(number, page, text)
        chunk = pymupdf4llm.to_markdown(
            opened.document,
            pages=[number - 1],
            hdr_info=headers,
            show_progress=False,
            ignore_images=True,
        ).strip()
        chunks.append(chunk)
        if _lost_most_text(text, chunk):
            lost_text.append(number)
    markdown = "\n\n".join(chunk for chunk in chunks if chunk) + "\n"
    target.write_text(markdown, encoding="utf-8")

    headings = len(_MARKDOWN_HEADING.findall(markdown))
    tables = len(_MARKDOWN_TABLE_RULE.findall(markdown))
    grade, reasons = _grade_markdown(survey, headings, lost_text)
    return {
        **opened.base_metadata(),
        **survey.metadata(),
        "engine": "pymupdf4llm plain mode",
        "headings": headings,
        "tables": tables,
        "pagesWithLostText": lost_text,
        "charactersPerPage": [len(chunk) for chunk in chunks],
        "grade": grade,
        "gradeReasons": reasons,
    }


def _lost_most_text(text: str, markdown: str) -> bool:
    """Tell whether the Markdown of a page kept less than half of its text layer's letters."""
    letters = sum(char.isalnum() for char in text)
    markdown_letters = sum(char.isalnum() for char in markdown)
    return letters >= 20 and markdown_letters < letters / 2


def _grade_markdown(
    survey: TextLayerSurvey, headings: int, lost_text: list[int]
) -> tuple[str, list[str]]:
    """Grade the result ``good``, ``fair`` or ``poor``, with the reasons that lowered it."""
    reasons: list[str] = []
    share = len(survey.without_text) / survey.page_count
    if survey.text_layer == "none":
        reasons.append("no page has a text layer; the PDF needs OCR, which this tool does not run")
        return "poor", reasons
    if share > 0.5:
        reasons.append(
            f"{len(survey.without_text)} of {survey.page_count} pages have no text layer"
        )
        return "poor", reasons
    if len(survey.without_text) == 1:
        reasons.append(f"page {survey.without_text[0]} has no text layer")
    elif survey.without_text:
        reasons.append(f"pages {_list_pages(survey.without_text)} have no text layer")
    if lost_text:
        reasons.append(
            f"the Markdown lost most of the text of pages {_list_pages(lost_text)}, such as "
            "vertical or rotated text; pdf-to-text keeps it"
        )
    if headings == 0 and survey.page_count > 1:
        reasons.append("no headings were detected, so the structure is flat")
    return ("fair" if reasons else "good"), reasons


def _list_pages(numbers: list[int]) -> str:
    listed = ", ".join(str(number) for number in numbers[:10])
    return listed + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


# Text-only DOCX


@dataclass
class _Block:
    text: str
    size: float


def pdf_to_docx(
    source: Path,
    target: Path,
    *,
    page_ranges: list[tuple[int, int]] | None,
    max_pages: int | None,
    report_progress: ProgressCallback = _no_progress,
) -> dict[str, Any]:
    """Write the text of the selected pages to a DOCX at ``target``, one paragraph per block.

    Blocks whose font is clearly larger than the body text become headings, up to three
    levels by size. Images, tables and the page layout are not carried over.
    """
    opened = open_pdf(source, page_ranges, max_pages)
    survey = TextLayerSurvey(len(opened.pages))
    blocks: list[_Block] = []
    for number, page in _each_page(opened, report_progress):
        page_blocks = list(_text_blocks(page))
        survey.add(number, page, "".join(block.text for block in page_blocks))
        blocks.extend(page_blocks)

    levels = _heading_levels(blocks)
    document = docx.Document()
    headings = 0
    for block in blocks:
        level = levels.get(round(block.size, 1))
        if level is not None:
            document.add_heading(block.text, level=level)
            headings += 1
        else:
            document.add_paragraph(block.text)
    document.save(str(target))
    return {
        **opened.base_metadata(),
        **survey.metadata(),
        "textOnly": True,
        "images": False,
        "tables": False,
        "layout": False,
        "paragraphs": len(blocks) - headings,
        "headings": headings,
    }


def _text_blocks(page: pymupdf.Page) -> Iterator[_Block]:
    content = page.get_text("dict", sort=True)
    for block in content["blocks"]:
        if block.get("type") != 0:
            continue
        lines = []
        sizes: collections.Counter[float] = collections.Counter()
        for line in block["lines"]:
            spans = line["spans"]
            lines.append("".join(span["text"] for span in spans))
            for span in spans:
                sizes[round(span["size"], 1)] += len(span["text"])
        text = _XML_INVALID.sub("", " ".join(part.strip() for part in lines)).strip()
        if text and sizes:
            yield _Block(text, sizes.most_common(1)[0][0])


def _heading_levels(blocks: list[_Block]) -> dict[float, int]:
    """Map font sizes at least 15 % above the body size to heading levels 1 to 3."""
    weight: collections.Counter[float] = collections.Counter()
    for block in blocks:
        weight[round(block.size, 1)] += len(block.text)
    if not weight:
        return {}
    body = weight.most_common(1)[0][0]
    larger = sorted((size for size in weight if size >= body * 1.15), reverse=True)
    return {size: min(level, 3) for level, size in enumerate(larger, start=1)}
