"""Detect a file's real content type from its first bytes, whatever type the client declared."""

from __future__ import annotations

from pathlib import Path

SNIFF_BYTES = 512
"""Bytes that ``sniff_file`` reads: every signature plus room for leading whitespace in HTML."""

_UTF8_BOM = b"\xef\xbb\xbf"
_HTML_WHITESPACE = b" \t\n\r\f"
_HTML_TAG_TERMINATORS = b" \t\n\r\f>"

# Sizes of the BMP info header that follows the 14-byte file header. Checking it keeps text
# that starts with "BM" from being detected as a bitmap.
_BMP_INFO_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

_EBML_SIGNATURE = b"\x1a\x45\xdf\xa3"

_SIMPLE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),
    (b"MM\x00+", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)


def sniff_content_type(head: bytes) -> str | None:
    """Return the content type that the leading bytes of a file show, or None if unknown.

    Pass at least the first 64 bytes of the file; HTML after a long run of leading
    whitespace needs more. ZIP-based formats such as DOCX are all reported as
    ``application/zip``.
    """
    for signature, content_type in _SIMPLE_SIGNATURES:
        if head.startswith(signature):
            return content_type

    if head.startswith(_EBML_SIGNATURE):
        # WebM is Matroska with a restricted set of codecs, and the EBML header's DocType
        # names which of the two a file is. A header without either name is reported as WebM.
        return "video/x-matroska" if b"matroska" in head[:64] else "video/webm"

    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"

    if _is_bmp(head):
        return "image/bmp"

    if head[4:8] == b"ftyp":
        # NOTE: HEIF and AVIF images also start with an ftyp box, and their brands
        # (heic, mif1, avif) are reported as video/mp4 here.
        major_brand = head[8:12]
        return "video/quicktime" if major_brand == b"qt  " else "video/mp4"

    if _is_html(head):
        return "text/html"

    return None


def sniff_file(path: Path) -> str | None:
    """Read the first bytes of the file at ``path`` and return its detected content type."""
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    return sniff_content_type(head)


def _is_bmp(head: bytes) -> bool:
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    info_header_size = int.from_bytes(head[14:18], "little")
    return info_header_size in _BMP_INFO_HEADER_SIZES


def _is_html(head: bytes) -> bool:
    text = head.removeprefix(_UTF8_BOM).lstrip(_HTML_WHITESPACE).lower()
    for opening in (b"<!doctype html", b"<html"):
        if text.startswith(opening):
            # "<htmlfoo>" is another element, so the name must end at whitespace, ">" or
            # the end of the bytes read.
            following = text[len(opening) : len(opening) + 1]
            return not following or following in _HTML_TAG_TERMINATORS
    return False
