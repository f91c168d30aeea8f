"""Activity names, and the conversion activity of each tool that has a worker engine."""

from __future__ import annotations

from typing import NamedTuple

RECORD_JOB_STATE = "record_job_state"
INSPECT_INPUT = "inspect_input"
OBJECT_EXISTS = "object_exists"
DELETE_OBJECTS = "delete_objects"
COMPRESS_IMAGE = "compress_image"
RENDER_HTML = "render_html"
CONVERT_OFFICE_TO_PDF = "convert_office_to_pdf"


class Conversion(NamedTuple):
    inspect_activity: str | None
    convert_activity: str


CONVERSIONS: dict[str, Conversion] = {
    "image-compress-api": Conversion(INSPECT_INPUT, COMPRESS_IMAGE),
    "html-to-pdf-api": Conversion(INSPECT_INPUT, RENDER_HTML),
    "word-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
    "slides-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
    "spreadsheet-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
}
