"""Tool catalog served by ``GET /v1/tools``, and validation of a job's ``options``.

Each tool entry states whether ``POST /v1/jobs`` accepts the tool, which inputs it takes, its
limits and output, and the JSON Schema of its options. Worker tools run on a task-queue lane.
Browser-only tools run in the web page and never reach the API.
"""

from __future__ import annotations

import copy
import enum
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import ComputedFieldInfo, FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from app.config import Lane, get_settings
from app.engines.office import office_missing_reason
from app.engines.pages import check_margin
from app.engines.video import find_ffmpeg

MIB = 1024 * 1024
GIB = 1024 * MIB
DAY_SECONDS = 24 * 60 * 60

OPTIONS_FIELD_PREFIX = "input.options"
"""Prefix of ``FieldError.field`` for errors in a job request's ``options`` object."""

EMPTY_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {},
}
"""``optionsSchema`` of a tool that takes no options."""


# Engines


ENGINE_NAMES: dict[str, str] = {
    "pillow": "Pillow",
    "weasyprint": "WeasyPrint",
    "libreoffice": "LibreOffice",
    "pymupdf": "PyMuPDF",
    "pymupdf4llm": "PyMuPDF4LLM",
    "ffmpeg": "FFmpeg",
}
"""Display name of each engine id, as used in ``apiJobsReason``."""


def _installed_engines() -> frozenset[str]:
    settings = get_settings()
    engines = {"pillow", "weasyprint", "pymupdf", "pymupdf4llm"}
    if find_ffmpeg(settings.ffmpeg_path) is not None:
        engines.add("ffmpeg")
    if office_missing_reason(settings.libreoffice_path, settings.libreoffice_python) is None:
        engines.add("libreoffice")
    return frozenset(engines)


# NOTE: This looks at the API's own machine, not at the workers. With workers elsewhere, the
# API machines need the engines installed too; the Dockerfile image has them all.
ENGINES_AVAILABLE: frozenset[str] = _installed_engines()
"""Engine ids installed on this machine. A worker tool accepts API jobs only if its engine is
in this set."""

BROWSER_ONLY_REASON = "This tool runs in the browser, so the API does not accept jobs for it."


def _engine_missing_reason(engine: str) -> str:
    return f"This tool's engine ({ENGINE_NAMES[engine]}) is not installed on the workers yet."


# Catalog models


def _title_from_field_name(field_name: str, _info: FieldInfo | ComputedFieldInfo) -> str:
    return field_name.replace("_", " ").capitalize()


class CamelModel(BaseModel):
    """Base model whose JSON form uses camelCase keys and that also accepts snake_case names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class InputKind(enum.StrEnum):
    """Kinds of input that a job can pass."""

    FILE = "file"
    TEXT = "text"
    JSON = "json"


class AcceptedType(CamelModel):
    """Content type that a tool accepts, with the file extensions allowed for it."""

    content_type: str
    extensions: tuple[str, ...]
    """Lowercase extensions with the leading dot, such as ``.jpg``."""

    @model_validator(mode="after")
    def _check_normalized(self) -> AcceptedType:
        if self.content_type != self.content_type.lower():
            raise ValueError(f"content type {self.content_type!r} must be lowercase")
        for extension in self.extensions:
            if not extension.startswith(".") or extension != extension.lower():
                raise ValueError(f"extension {extension!r} must be lowercase and start with a dot")
        return self


class ToolLimits(CamelModel):
    """Input limits of a worker tool. A limit that does not apply to the tool is None."""

    max_bytes: int = Field(gt=0)
    """Maximum input size in bytes."""
    max_pixels: int | None = Field(default=None, gt=0)
    """Maximum width times height of an input image or video frame."""
    max_pages: int | None = Field(default=None, gt=0)
    """Maximum pages in the input PDF, or in the produced PDF when the tool creates one."""
    max_seconds: int | None = Field(default=None, gt=0)
    """Maximum duration of the input video in seconds."""


class ToolOutput(CamelModel):
    """File that a job produces."""

    content_type: str
    extension: str


class AttemptBounds(CamelModel):
    """Default and maximum of a job's ``maxAttempts``, counting the first attempt."""

    default: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _check_order(self) -> AttemptBounds:
        if self.default > self.max:
            raise ValueError(f"default {self.default} is greater than max {self.max}")
        return self


class DeadlineBounds(CamelModel):
    """Default and allowed range of a job's ``deadlineSeconds``."""

    default: int = Field(gt=0)
    min: int = Field(gt=0)
    max: int = Field(gt=0)

    @model_validator(mode="after")
    def _check_order(self) -> DeadlineBounds:
        if not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} is outside min {self.min} and max {self.max}")
        return self


class Tool(CamelModel):
    """Catalog entry of one tool.

    ``limits``, ``output``, ``retention_seconds``, ``max_attempts``, ``deadline_seconds`` and
    ``lane`` describe API jobs, so they are None for browser-only tools and set for worker tools.
    """

    slug: str
    title: str
    description: str
    category: str
    browser_only: bool
    api_jobs: bool
    """Whether ``POST /v1/jobs`` accepts this tool."""
    api_jobs_reason: str | None
    """Reason that ``POST /v1/jobs`` rejects this tool, or None when it accepts it."""
    input_kinds: tuple[InputKind, ...]
    accepted_types: tuple[AcceptedType, ...]
    limits: ToolLimits | None
    output: ToolOutput | None
    retention_seconds: int | None = Field(gt=0)
    """Time in seconds that the output is kept after the job succeeds."""
    max_attempts: AttemptBounds | None
    deadline_seconds: DeadlineBounds | None
    cost_units: int = Field(ge=0)
    """Credits that one job costs, or 0 for browser-only tools."""
    lane: Lane | None

    engine: str | None = Field(default=None, exclude=True)
    """Engine id that runs the tool on a worker, or None for browser-only tools."""
    options_model: type[BaseModel] | None = Field(default=None, exclude=True)
    """Model of the ``options`` object, or None when the tool takes no options."""

    @model_validator(mode="after")
    def _check_consistency(self) -> Tool:
        if self.api_jobs == (self.api_jobs_reason is not None):
            raise ValueError(
                f"{self.slug}: api_jobs_reason must be set exactly when api_jobs is false"
            )
        if InputKind.FILE in self.input_kinds and not self.accepted_types:
            raise ValueError(f"{self.slug}: a tool with file input must list accepted types")

        job_fields = {
            "limits": self.limits,
            "output": self.output,
            "retention_seconds": self.retention_seconds,
            "max_attempts": self.max_attempts,
            "deadline_seconds": self.deadline_seconds,
            "lane": self.lane,
            "engine": self.engine,
        }
        if self.browser_only:
            if self.api_jobs:
                raise ValueError(f"{self.slug}: a browser-only tool cannot accept API jobs")
            set_fields = [name for name, value in job_fields.items() if value is not None]
            if set_fields:
                raise ValueError(f"{self.slug}: a browser-only tool must not set {set_fields}")
        else:
            missing_fields = [name for name, value in job_fields.items() if value is None]
            if missing_fields:
                raise ValueError(f"{self.slug}: a worker tool must set {missing_fields}")
            if self.engine not in ENGINE_NAMES:
                raise ValueError(f"{self.slug}: unknown engine {self.engine!r}")
            if self.cost_units < 1:
                raise ValueError(f"{self.slug}: a worker tool must cost at least 1 unit")
        return self

    def options_schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the tool's ``options`` object, with camelCase properties."""
        if self.options_model is None:
            return copy.deepcopy(EMPTY_OPTIONS_SCHEMA)
        return self.options_model.model_json_schema(by_alias=True)

    def public(self) -> dict[str, Any]:
        """Return the catalog entry as JSON-ready data with camelCase keys."""
        entry = self.model_dump(mode="json", by_alias=True)
        entry["optionsSchema"] = self.options_schema()
        return entry


# Option models


class ToolOptions(BaseModel):
    """Base model of a tool's ``options``: camelCase keys, strict JSON types, no unknown keys.

    Strict mode rejects strings for numbers and floats for integers, so ``"50"`` and ``50.0``
    are invalid where an integer is expected. Python code may construct options by field name.
    A subclass's docstring and field descriptions appear in the public ``optionsSchema``, so
    they name options in camelCase and use plain text.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        frozen=True,
        field_title_generator=_title_from_field_name,
    )


def _option_conflict(field: str, message: str) -> PydanticCustomError:
    """Build a cross-field error that ``validate_options`` reports on the option ``field``."""
    return PydanticCustomError("option_conflict", message, {"field": field})


class HtmlToPdfOptions(ToolOptions):
    """Options of html-to-pdf-api."""

    page_size: Literal["A4", "Letter", "Legal", "A3", "A5"] = Field(
        default="A4", description="Paper size of every page."
    )
    landscape: bool = Field(default=False, description="Print pages in landscape orientation.")
    margin: str = Field(
        default="20mm",
        max_length=16,
        description="Margin on every side, as a CSS length such as 20mm, 1in or 0, "
        "below half the page's shorter side.",
    )
    print_background: bool = Field(default=True, description="Print background colors and images.")
    wait_until: Literal["load", "domcontentloaded", "networkidle0", "networkidle2"] = Field(
        default="load",
        description="Accepted for compatibility with browser-based renderers. No scripts run and "
        "nothing is fetched, so the page is always rendered as loaded.",
    )

    @model_validator(mode="after")
    def _check_margin(self) -> HtmlToPdfOptions:
        try:
            check_margin(self.margin, self.page_size)
        except ValueError as err:
            raise _option_conflict("margin", str(err)) from err
        return self


MAX_PAGE_NUMBER = 100_000


def parse_page_range(text: str) -> list[tuple[int, int]]:
    """Parse a page range such as ``1-3,5`` into (first, last) pairs, counting from 1.

    Raises ValueError with a message that names the part at fault.
    """
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        bounds = [bound.strip() for bound in part.split("-")]
        if not 1 <= len(bounds) <= 2 or not all(
            bound.isascii() and bound.isdigit() for bound in bounds
        ):
            raise ValueError(
                f"must be page numbers and ranges separated by commas, such as 1-3,5 (got {text!r})"
            )
        first, last = int(bounds[0]), int(bounds[-1])
        if first < 1 or last > MAX_PAGE_NUMBER:
            raise ValueError(f"pages count from 1 to {MAX_PAGE_NUMBER} (got {part.strip()!r})")
        if last < first:
            raise ValueError(f"the range {part.strip()!r} ends before it starts")
        ranges.append((first, last))
    return ranges


def normalize_page_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort the ranges and merge those that overlap or touch, so that each page appears once."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def format_page_ranges(ranges: list[tuple[int, int]]) -> str:
    """Write ranges in the form that ``parse_page_range`` reads, such as ``1-3,5``."""
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


class PageRangeOptions(ToolOptions):
    """Options that select pages of the input."""

    page_range: str | None = Field(
        default=None,
        max_length=200,
        description="Pages to convert, such as 1-3,5, counting from 1; null converts every "
        "page. Each page is converted once, in document order. Pages past the end are "
        "skipped; a range with no existing page fails the job with invalid_options.",
        json_schema_extra={"pattern": r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$"},
    )

    @model_validator(mode="after")
    def _check_page_range(self) -> PageRangeOptions:
        if self.page_range is not None:
            try:
                parse_page_range(self.page_range)
            except ValueError as err:
                raise _option_conflict("pageRange", str(err)) from err
        return self

    def page_ranges(self) -> list[tuple[int, int]] | None:
        """Return the selected (first, last) page pairs, sorted and merged, or None for all.

        Pages are converted once each and in document order, whatever the order and
        overlaps in ``pageRange``, as print dialogs treat a page range.
        """
        if self.page_range is None:
            return None
        return normalize_page_ranges(parse_page_range(self.page_range))


class OfficeToPdfOptions(PageRangeOptions):
    """Options of slides-to-pdf, also taken by word-to-pdf and spreadsheet-to-pdf."""

    pdf_a: bool = Field(default=False, description="Produce a PDF/A-2b file for archiving.")


class WordToPdfOptions(OfficeToPdfOptions):
    """Options of word-to-pdf."""

    landscape: bool = Field(
        default=False,
        description="Turn every page to landscape orientation; the text flows again to fit.",
    )


class SpreadsheetToPdfOptions(WordToPdfOptions):
    """Options of spreadsheet-to-pdf. A CSV file is read as comma-separated UTF-8."""

    fit_to_width: bool = Field(
        default=False,
        description="Scale each sheet so that all its columns fit the width of one page.",
    )
    single_page_sheets: bool = Field(
        default=False,
        description="Put each sheet on one page of its own size instead of splitting it.",
    )

    @model_validator(mode="after")
    def _check_scaling(self) -> SpreadsheetToPdfOptions:
        if self.fit_to_width and self.single_page_sheets:
            raise _option_conflict(
                "singlePageSheets", "cannot be combined with fitToWidth; choose one of them"
            )
        return self


class PdfToImagesOptions(PageRangeOptions):
    """Options of pdf-to-images-zip. The ZIP file contains one PNG image per page."""

    dpi: int = Field(
        default=150, ge=72, le=300, description="Resolution of each page image, in dots per inch."
    )


class PdfToTextOptions(PageRangeOptions):
    """Options of pdf-to-text."""


class PdfToMarkdownOptions(PageRangeOptions):
    """Options of pdf-to-markdown."""


class PdfToDocxOptions(PageRangeOptions):
    """Options of pdf-to-docx."""


class ImageCompressOptions(ToolOptions):
    """Options of image-compress-api.

    The image is scaled down, keeping its aspect ratio, until it fits maxWidth and maxHeight.
    It is never scaled up.
    """

    quality: int = Field(default=82, ge=1, le=95, description="JPEG quality of the output.")
    max_width: int | None = Field(
        default=None, ge=1, le=20_000, description="Maximum output width in pixels."
    )
    max_height: int | None = Field(
        default=None, ge=1, le=20_000, description="Maximum output height in pixels."
    )


class TrimVideoOptions(ToolOptions):
    """Options of trim-video. Give end or duration, or neither to keep the rest of the video."""

    start: float = Field(
        default=0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="Start of the kept part, in seconds.",
    )
    end: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="End of the kept part, in seconds; past the end of the video means its end.",
    )
    duration: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Length of the kept part, in seconds, instead of end.",
    )
    mode: Literal["accurate", "fast"] = Field(
        default="accurate",
        description="accurate re-encodes for cuts exact to the frame; fast copies the streams "
        "without re-encoding, so the cut starts at the keyframe at or before start.",
    )

    @model_validator(mode="after")
    def _check_time_order(self) -> TrimVideoOptions:
        if self.end is not None and self.duration is not None:
            raise _option_conflict("duration", "cannot be combined with end; give one of them")
        if self.end is not None and self.end <= self.start:
            raise _option_conflict(
                "end", f"must be greater than start, which is {self.start:g} (got {self.end:g})"
            )
        return self


class CompressVideoOptions(ToolOptions):
    """Options of compress-video, which re-encodes the video as H.264 with AAC audio in MP4.

    The video is scaled down, keeping its aspect ratio, until it fits maxWidth and maxHeight,
    and never scaled up. Odd widths and heights are rounded down to even ones.
    """

    crf: int = Field(
        default=28,
        ge=18,
        le=35,
        description="H.264 constant rate factor: higher values give smaller, lower-quality files.",
    )
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ] = Field(
        default="veryfast",
        description="x264 speed preset: slower presets give smaller files at the same quality.",
    )
    max_width: int | None = Field(
        default=None, ge=16, le=7680, description="Maximum output width in pixels."
    )
    max_height: int | None = Field(
        default=None, ge=16, le=4320, description="Maximum output height in pixels."
    )


MAX_GIF_SECONDS = 30
"""Maximum length, in seconds, of the clip that video-to-gif turns into a GIF."""


class VideoToGifOptions(ToolOptions):
    """Options of video-to-gif, which builds a palette from the clip for good colour."""

    start: float = Field(
        default=0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="Start of the clip, in seconds.",
    )
    duration: float = Field(
        default=5,
        gt=0,
        le=MAX_GIF_SECONDS,
        allow_inf_nan=False,
        description="Length of the clip, in seconds; it ends earlier if the video does.",
    )
    fps: int = Field(default=10, ge=1, le=30, description="Frames per second of the GIF.")
    width: int = Field(
        default=480,
        ge=32,
        le=1280,
        description="Width of the GIF in pixels. The height keeps the aspect ratio.",
    )


# Tool definitions


def _worker_tool(
    *,
    slug: str,
    title: str,
    description: str,
    category: str,
    lane: Lane,
    engine: str,
    input_kinds: tuple[InputKind, ...],
    accepted_types: tuple[AcceptedType, ...],
    limits: ToolLimits,
    output: ToolOutput,
    deadline_seconds: DeadlineBounds,
    cost_units: int,
    options_model: type[ToolOptions] | None,
) -> Tool:
    available = engine in ENGINES_AVAILABLE
    return Tool(
        slug=slug,
        title=title,
        description=description,
        category=category,
        browser_only=False,
        api_jobs=available,
        api_jobs_reason=None if available else _engine_missing_reason(engine),
        input_kinds=input_kinds,
        accepted_types=accepted_types,
        limits=limits,
        output=output,
        retention_seconds=DAY_SECONDS,
        max_attempts=AttemptBounds(default=3, max=5),
        deadline_seconds=deadline_seconds,
        cost_units=cost_units,
        lane=lane,
        engine=engine,
        options_model=options_model,
    )


def _browser_tool(
    *,
    slug: str,
    title: str,
    description: str,
    category: str,
    input_kinds: tuple[InputKind, ...],
    accepted_types: tuple[AcceptedType, ...],
) -> Tool:
    return Tool(
        slug=slug,
        title=title,
        description=description,
        category=category,
        browser_only=True,
        api_jobs=False,
        api_jobs_reason=BROWSER_ONLY_REASON,
        input_kinds=input_kinds,
        accepted_types=accepted_types,
        limits=None,
        output=None,
        retention_seconds=None,
        max_attempts=None,
        deadline_seconds=None,
        cost_units=0,
        lane=None,
    )


FILE_INPUT = (InputKind.FILE,)

PDF_TYPES = (AcceptedType(content_type="application/pdf", extensions=(".pdf",)),)
WORD_TYPES = (
    AcceptedType(content_type="application/msword", extensions=(".doc",)),
    AcceptedType(
        content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        extensions=(".docx",),
    ),
    AcceptedType(content_type="application/vnd.oasis.opendocument.text", extensions=(".odt",)),
    AcceptedType(content_type="application/rtf", extensions=(".rtf",)),
    AcceptedType(content_type="text/rtf", extensions=(".rtf",)),
)
SLIDES_TYPES = (
    AcceptedType(content_type="application/vnd.ms-powerpoint", extensions=(".ppt",)),
    AcceptedType(
        content_type="application/vnd.openxmlformats-officedocument.presentationml.presentation",
        extensions=(".pptx",),
    ),
    AcceptedType(
        content_type="application/vnd.oasis.opendocument.presentation", extensions=(".odp",)
    ),
)
SPREADSHEET_TYPES = (
    AcceptedType(content_type="application/vnd.ms-excel", extensions=(".xls",)),
    AcceptedType(
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        extensions=(".xlsx",),
    ),
    AcceptedType(
        content_type="application/vnd.oasis.opendocument.spreadsheet", extensions=(".ods",)
    ),
    AcceptedType(content_type="text/csv", extensions=(".csv",)),
)
IMAGE_TYPES = (
    AcceptedType(content_type="image/png", extensions=(".png",)),
    AcceptedType(content_type="image/jpeg", extensions=(".jpg", ".jpeg")),
    AcceptedType(content_type="image/webp", extensions=(".webp",)),
)
VIDEO_TYPES = (
    AcceptedType(content_type="video/mp4", extensions=(".mp4",)),
    AcceptedType(content_type="video/quicktime", extensions=(".mov",)),
    AcceptedType(content_type="video/webm", extensions=(".webm",)),
)

PDF_OUTPUT = ToolOutput(content_type="application/pdf", extension=".pdf")
MP4_OUTPUT = ToolOutput(content_type="video/mp4", extension=".mp4")

OFFICE_LIMITS = ToolLimits(max_bytes=100 * MIB, max_pages=1_000)
OFFICE_DEADLINE = DeadlineBounds(default=180, min=10, max=900)
PDF_DEADLINE = DeadlineBounds(default=300, min=10, max=900)
VIDEO_LIMITS = ToolLimits(max_bytes=2 * GIB, max_pixels=3840 * 2160, max_seconds=3_600)
VIDEO_DEADLINE = DeadlineBounds(default=900, min=30, max=3_600)

_TOOL_LIST: tuple[Tool, ...] = (
    _worker_tool(
        slug="html-to-pdf-api",
        title="HTML to PDF",
        description="Render an HTML document to a PDF file.",
        category="pdf",
        lane=Lane.LIGHT,
        engine="weasyprint",
        input_kinds=(InputKind.TEXT, InputKind.JSON, InputKind.FILE),
        accepted_types=(AcceptedType(content_type="text/html", extensions=(".html", ".htm")),),
        limits=ToolLimits(max_bytes=5 * MIB, max_pages=500),
        output=PDF_OUTPUT,
        deadline_seconds=DeadlineBounds(default=60, min=5, max=300),
        cost_units=2,
        options_model=HtmlToPdfOptions,
    ),
    _worker_tool(
        slug="word-to-pdf",
        title="Word to PDF",
        description="Convert a DOC, DOCX, ODT or RTF document to PDF.",
        category="pdf",
        lane=Lane.DOCUMENTS,
        engine="libreoffice",
        input_kinds=FILE_INPUT,
        accepted_types=WORD_TYPES,
        limits=OFFICE_LIMITS,
        output=PDF_OUTPUT,
        deadline_seconds=OFFICE_DEADLINE,
        cost_units=2,
        options_model=WordToPdfOptions,
    ),
    _worker_tool(
        slug="slides-to-pdf",
        title="Slides to PDF",
        description="Convert a PPT, PPTX or ODP presentation to PDF, one slide per page.",
        category="pdf",
        lane=Lane.DOCUMENTS,
        engine="libreoffice",
        input_kinds=FILE_INPUT,
        accepted_types=SLIDES_TYPES,
        limits=OFFICE_LIMITS,
        output=PDF_OUTPUT,
        deadline_seconds=OFFICE_DEADLINE,
        cost_units=2,
        options_model=OfficeToPdfOptions,
    ),
    _worker_tool(
        slug="spreadsheet-to-pdf",
        title="Spreadsheet to PDF",
        description="Convert an XLS, XLSX, ODS or CSV spreadsheet to PDF.",
        category="pdf",
        lane=Lane.DOCUMENTS,
        engine="libreoffice",
        input_kinds=FILE_INPUT,
        accepted_types=SPREADSHEET_TYPES,
        limits=OFFICE_LIMITS,
        output=PDF_OUTPUT,
        deadline_seconds=OFFICE_DEADLINE,
        cost_units=2,
        options_model=SpreadsheetToPdfOptions,
    ),
    _worker_tool(
        slug="pdf-to-images-zip",
        title="PDF to images",
        description="Render each page of a PDF to a PNG image, packed in a ZIP file.",
        category="pdf",
        lane=Lane.LIGHT,
        engine="pymupdf",
        input_kinds=FILE_INPUT,
        accepted_types=PDF_TYPES,
        limits=ToolLimits(max_bytes=200 * MIB, max_pages=500),
        output=ToolOutput(content_type="application/zip", extension=".zip"),
        deadline_seconds=PDF_DEADLINE,
        cost_units=2,
        options_model=PdfToImagesOptions,
    ),
    _worker_tool(
        slug="pdf-to-text",
        title="PDF to text",
        description="Extract the text of a PDF to a plain-text file, without OCR.",
        category="pdf",
        lane=Lane.LIGHT,
        engine="pymupdf",
        input_kinds=FILE_INPUT,
        accepted_types=PDF_TYPES,
        limits=ToolLimits(max_bytes=200 * MIB, max_pages=2_000),
        output=ToolOutput(content_type="text/plain", extension=".txt"),
        deadline_seconds=DeadlineBounds(default=120, min=5, max=600),
        cost_units=1,
        options_model=PdfToTextOptions,
    ),
    _worker_tool(
        slug="pdf-to-markdown",
        title="PDF to Markdown",
        description="Convert the text, headings, lists and tables of a PDF to Markdown.",
        category="pdf",
        lane=Lane.LIGHT,
        engine="pymupdf4llm",
        input_kinds=FILE_INPUT,
        accepted_types=PDF_TYPES,
        limits=ToolLimits(max_bytes=200 * MIB, max_pages=1_000),
        output=ToolOutput(content_type="text/markdown", extension=".md"),
        deadline_seconds=PDF_DEADLINE,
        cost_units=2,
        options_model=PdfToMarkdownOptions,
    ),
    _worker_tool(
        slug="pdf-to-docx",
        title="PDF to Word",
        description="Convert the text of a PDF to a DOCX document, with headings kept; "
        "images, tables and layout are not carried over.",
        category="pdf",
        lane=Lane.LIGHT,
        engine="pymupdf",
        input_kinds=FILE_INPUT,
        accepted_types=PDF_TYPES,
        limits=ToolLimits(max_bytes=100 * MIB, max_pages=500),
        output=ToolOutput(
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            extension=".docx",
        ),
        deadline_seconds=PDF_DEADLINE,
        cost_units=3,
        options_model=PdfToDocxOptions,
    ),
    _worker_tool(
        slug="image-compress-api",
        title="Compress image",
        description="Compress a PNG, JPEG or WebP image to a smaller JPEG, optionally scaled down.",
        category="image",
        lane=Lane.LIGHT,
        engine="pillow",
        input_kinds=FILE_INPUT,
        accepted_types=IMAGE_TYPES,
        limits=ToolLimits(max_bytes=50 * MIB, max_pixels=50_000_000),
        output=ToolOutput(content_type="image/jpeg", extension=".jpg"),
        deadline_seconds=DeadlineBounds(default=120, min=5, max=600),
        cost_units=1,
        options_model=ImageCompressOptions,
    ),
    _worker_tool(
        slug="trim-video",
        title="Trim video",
        description="Cut a video to the part between a start and an end time.",
        category="video",
        lane=Lane.MEDIA,
        engine="ffmpeg",
        input_kinds=FILE_INPUT,
        accepted_types=VIDEO_TYPES,
        limits=VIDEO_LIMITS,
        output=MP4_OUTPUT,
        deadline_seconds=VIDEO_DEADLINE,
        cost_units=3,
        options_model=TrimVideoOptions,
    ),
    _worker_tool(
        slug="compress-video",
        title="Compress video",
        description="Re-encode a video as H.264 MP4 at a lower bitrate, optionally scaled down.",
        category="video",
        lane=Lane.MEDIA,
        engine="ffmpeg",
        input_kinds=FILE_INPUT,
        accepted_types=VIDEO_TYPES,
        limits=VIDEO_LIMITS,
        output=MP4_OUTPUT,
        deadline_seconds=VIDEO_DEADLINE,
        cost_units=5,
        options_model=CompressVideoOptions,
    ),
    _worker_tool(
        slug="video-to-gif",
        title="Video to GIF",
        description="Turn a clip of a video into an animated GIF.",
        category="video",
        lane=Lane.MEDIA,
        engine="ffmpeg",
        input_kinds=FILE_INPUT,
        accepted_types=VIDEO_TYPES,
        limits=VIDEO_LIMITS,
        output=ToolOutput(content_type="image/gif", extension=".gif"),
        deadline_seconds=DeadlineBounds(default=300, min=30, max=1_800),
        cost_units=3,
        options_model=VideoToGifOptions,
    ),
    _worker_tool(
        slug="mute-video",
        title="Mute video",
        description="Remove the audio tracks from a video.",
        category="video",
        lane=Lane.MEDIA,
        engine="ffmpeg",
        input_kinds=FILE_INPUT,
        accepted_types=VIDEO_TYPES,
        limits=VIDEO_LIMITS,
        output=MP4_OUTPUT,
        deadline_seconds=DeadlineBounds(default=300, min=30, max=1_800),
        cost_units=2,
        options_model=None,
    ),
    _browser_tool(
        slug="json-formatter",
        title="JSON formatter",
        description="Validate JSON and format it with indentation, or minify it.",
        category="developer",
        input_kinds=(InputKind.TEXT, InputKind.FILE),
        accepted_types=(AcceptedType(content_type="application/json", extensions=(".json",)),),
    ),
    _browser_tool(
        slug="base64-encode",
        title="Base64 encode",
        description="Encode text or a file as Base64.",
        category="developer",
        input_kinds=(InputKind.TEXT, InputKind.FILE),
        accepted_types=(
            AcceptedType(content_type="text/plain", extensions=(".txt",)),
            AcceptedType(content_type="application/octet-stream", extensions=(".bin",)),
        ),
    ),
    _browser_tool(
        slug="color-picker",
        title="Color picker",
        description="Pick colors from an image and copy them as HEX, RGB or HSL values.",
        category="image",
        input_kinds=FILE_INPUT,
        accepted_types=IMAGE_TYPES,
    ),
)

TOOLS: dict[str, Tool] = {tool.slug: tool for tool in _TOOL_LIST}
"""All tools by slug, in catalog order: worker tools first, then browser-only tools."""


def get_tool(slug: str) -> Tool | None:
    """Return the tool with this slug, or None if the catalog has none."""
    return TOOLS.get(slug)


def list_tools() -> list[Tool]:
    """Return all tools in catalog order."""
    return list(TOOLS.values())


# Content types


def _normalize_content_type(content_type: str) -> str:
    """Drop parameters and lowercase: ``Text/CSV; charset=utf-8`` becomes ``text/csv``."""
    return content_type.split(";", 1)[0].strip().lower()


def accepted_type(tool: Tool, content_type: str) -> AcceptedType | None:
    """Return the tool's accepted type for ``content_type``, or None if the tool rejects it.

    Parameters such as ``charset`` and letter case in ``content_type`` are ignored.
    """
    media_type = _normalize_content_type(content_type)
    for candidate in tool.accepted_types:
        if candidate.content_type == media_type:
            return candidate
    return None


def extension_matches(tool: Tool, content_type: str, file_name: str) -> bool:
    """Check that the tool accepts ``content_type`` and that ``file_name`` has an extension for it.

    The extension is compared without letter case. Directory parts of ``file_name``, with ``/``
    or ``\\`` separators, are ignored. A name without an extension never matches.
    """
    accepted = accepted_type(tool, content_type)
    if accepted is None:
        return False
    base_name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    extension = PurePosixPath(base_name).suffix.lower()
    return extension != "" and extension in accepted.extensions


# Option validation


@dataclass(frozen=True)
class FieldError:
    """Problem with one field of a request, in the form the API returns it."""

    field: str
    """Dotted path of the field, such as ``input.options.quality``."""
    message: str


def _format_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe_range(schema: dict[str, Any]) -> str:
    """Describe the numeric bounds of a JSON Schema, such as ``from 1 to 95`` or ``at least 0``."""
    minimum = schema.get("minimum")
    maximum = schema.get("maximum")
    if minimum is not None and maximum is not None:
        return f"from {_format_number(minimum)} to {_format_number(maximum)}"

    bounds: list[str] = []
    if minimum is not None:
        bounds.append(f"at least {_format_number(minimum)}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"greater than {_format_number(schema['exclusiveMinimum'])}")
    if maximum is not None:
        bounds.append(f"at most {_format_number(maximum)}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"less than {_format_number(schema['exclusiveMaximum'])}")
    return " and ".join(bounds)


def _describe_allowed(schema: dict[str, Any]) -> str:
    """Describe the values that a JSON Schema allows, such as ``an integer from 1 to 95``."""
    if "anyOf" in schema:
        return " or ".join(_describe_allowed(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])

    schema_type = schema.get("type")
    if schema_type == "null":
        return "null"
    if schema_type == "boolean":
        return "true or false"
    if schema_type in ("integer", "number"):
        noun = "an integer" if schema_type == "integer" else "a number"
        bounds = _describe_range(schema)
        return f"{noun} {bounds}" if bounds else noun
    if schema_type == "string":
        if "maxLength" in schema:
            return f"a string of at most {schema['maxLength']} characters"
        return "a string"
    return "a valid value"


def _format_value(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)


def _unknown_option_message(name: str, allowed_names: list[str]) -> str:
    if not allowed_names:
        return f"unknown option '{name}'; this tool takes no options"
    return f"unknown option '{name}'; allowed options: {', '.join(allowed_names)}"


def _field_error_from_pydantic(
    error: ErrorDetails, properties: dict[str, Any], field_prefix: str
) -> FieldError:
    """Convert one pydantic error into a FieldError that names the option and its allowed values."""
    error_type = error["type"]
    location = error["loc"]
    context = error.get("ctx") or {}

    if error_type == "option_conflict":
        return FieldError(field=f"{field_prefix}.{context['field']}", message=error["msg"])
    if not location:
        if error_type in ("model_type", "dict_type", "model_attributes_type"):
            return FieldError(field=field_prefix, message="must be a JSON object")
        return FieldError(field=field_prefix, message=error["msg"])

    name = str(location[0])
    field = f"{field_prefix}.{name}"
    if error_type == "extra_forbidden":
        return FieldError(field=field, message=_unknown_option_message(name, list(properties)))

    property_schema = properties.get(name)
    if property_schema is None:
        return FieldError(field=field, message=error["msg"])
    allowed = _describe_allowed(property_schema)
    if error_type == "missing":
        return FieldError(field=field, message=f"is required and must be {allowed}")
    return FieldError(
        field=field, message=f"must be {allowed} (got {_format_value(error['input'])})"
    )


def validate_options(
    tool: Tool,
    options: dict[str, Any] | None,
    *,
    field_prefix: str = OPTIONS_FIELD_PREFIX,
) -> tuple[BaseModel | None, list[FieldError]]:
    """Validate a job's ``options`` object against the tool's options model.

    ``options`` uses the camelCase names of ``optionsSchema``, and snake_case names are unknown
    options. None counts as an empty object, so every option takes its default.

    Returns the validated model and no errors, or None and one FieldError per problem. The
    model is None without errors when the tool takes no options and ``options`` is empty.
    """
    if options is None:
        options = {}

    if tool.options_model is None:
        if not isinstance(options, dict):
            return None, [FieldError(field=field_prefix, message="must be a JSON object")]
        errors = [
            FieldError(field=f"{field_prefix}.{name}", message=_unknown_option_message(name, []))
            for name in options
        ]
        return None, errors

    try:
        model = tool.options_model.model_validate(options, by_alias=True, by_name=False)
    except ValidationError as exc:
        properties: dict[str, Any] = tool.options_schema().get("properties", {})
        return None, [
            _field_error_from_pydantic(error, properties, field_prefix) for error in exc.errors()
        ]
    return model, []
