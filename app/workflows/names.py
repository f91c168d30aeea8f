"""Activity names, and the conversion activity of each tool that has a worker engine."""

from __future__ import annotations

from typing import NamedTuple

RECORD_JOB_STATE = "record_job_state"
INSPECT_INPUT = "inspect_input"
OBJECT_EXISTS = "object_exists"
DELETE_OBJECTS = "delete_objects"
DELIVER_WEBHOOK = "deliver_webhook"
COMPRESS_IMAGE = "compress_image"
RENDER_HTML = "render_html"
CONVERT_OFFICE_TO_PDF = "convert_office_to_pdf"
PDF_TO_IMAGES_ZIP = "pdf_to_images_zip"
PDF_TO_TEXT = "pdf_to_text"
PDF_TO_MARKDOWN = "pdf_to_markdown"
PDF_TO_DOCX = "pdf_to_docx"
TRIM_VIDEO = "trim_video"
COMPRESS_VIDEO = "compress_video"
VIDEO_TO_GIF = "video_to_gif"
MUTE_VIDEO = "mute_video"


class Conversion(NamedTuple):
    inspect_activity: str | None
    convert_activity: str


CONVERSIONS: dict[str, Conversion] = {
    "image-compress-api": Conversion(INSPECT_INPUT, COMPRESS_IMAGE),
    "html-to-pdf-api": Conversion(INSPECT_INPUT, RENDER_HTML),
    "word-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
    "slides-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
    "spreadsheet-to-pdf": Conversion(INSPECT_INPUT, CONVERT_OFFICE_TO_PDF),
    "pdf-to-images-zip": Conversion(INSPECT_INPUT, PDF_TO_IMAGES_ZIP),
    "pdf-to-text": Conversion(INSPECT_INPUT, PDF_TO_TEXT),
    "pdf-to-markdown": Conversion(INSPECT_INPUT, PDF_TO_MARKDOWN),
    "pdf-to-docx": Conversion(INSPECT_INPUT, PDF_TO_DOCX),
    "trim-video": Conversion(INSPECT_INPUT, TRIM_VIDEO),
    "compress-video": Conversion(INSPECT_INPUT, COMPRESS_VIDEO),
    "video-to-gif": Conversion(INSPECT_INPUT, VIDEO_TO_GIF),
    "mute-video": Conversion(INSPECT_INPUT, MUTE_VIDEO),
}
