"""PDF files that the tests generate with PyMuPDF."""

from __future__ import annotations

import io

import pymupdf
from PIL import Image


def _png(width: int = 400, height: int = 300) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _text_page(document: pymupdf.Document, heading: str, lines: list[str]) -> pymupdf.Page:
    page = document.new_page()
    page.insert_text((72, 80), heading, fontsize=22)
    y = 120.0
    for line in lines:
        page.insert_text((72, y), line, fontsize=11)
        y += 16
    return page


def text_pdf(pages: int = 3, marker: str = "Worklane") -> bytes:
    """A PDF whose every page has a large heading and body lines naming the page."""
    document = pymupdf.open()
    for number in range(1, pages + 1):
        lines = [f"{marker} body line {line} on page {number}." for line in range(1, 31)]
        _text_page(document, f"{marker} chapter {number}", lines)
    return bytes(document.tobytes())


def mixed_pdf() -> bytes:
    """Four pages: text, an image only (as a scan), text rotated by 90 degrees, and a table."""
    document = pymupdf.open()
    _text_page(document, "Introduction", ["First page text.", "More text."])

    scan = document.new_page()
    scan.insert_image(scan.rect, stream=_png(1240, 1754))

    rotated = _text_page(document, "Rotated", ["Text on a rotated page."])
    rotated.set_rotation(90)

    table = _text_page(document, "Prices", ["The table below lists prices."])
    rows = [("Item", "Price"), ("Apple", "1.20"), ("Pear", "0.80"), ("Plum", "2.50")]
    for row_index, row in enumerate(rows):
        top = 200 + row_index * 24
        for column_index, cell in enumerate(row):
            left = 72 + column_index * 150
            table.draw_rect(pymupdf.Rect(left, top, left + 150, top + 24), color=(0, 0, 0))
            table.insert_text((left + 6, top + 16), cell, fontsize=11)
    return bytes(document.tobytes())


def scanned_pdf(pages: int = 2) -> bytes:
    document = pymupdf.open()
    for _ in range(pages):
        page = document.new_page()
        page.insert_image(page.rect, stream=_png())
    return bytes(document.tobytes())


def blank_pdf(pages: int) -> bytes:
    document = pymupdf.open()
    for _ in range(pages):
        document.new_page()
    return bytes(document.tobytes())


def encrypted_pdf(user_password: str = "secret") -> bytes:
    document = pymupdf.open(stream=text_pdf(1))
    return bytes(
        document.tobytes(
            encryption=pymupdf.PDF_ENCRYPT_AES_256,  # type: ignore[attr-defined]
            user_pw=user_password,
            owner_pw="owner",
        )
    )


def restricted_pdf() -> bytes:
    """A PDF that opens without a password but forbids printing and copying."""
    document = pymupdf.open(stream=text_pdf(1, marker="Restricted"))
    return bytes(
        document.tobytes(
            encryption=pymupdf.PDF_ENCRYPT_AES_256,  # type: ignore[attr-defined]
            owner_pw="owner",
            permissions=pymupdf.PDF_PERM_ACCESSIBILITY,  # type: ignore[attr-defined]
        )
    )


def truncated_pdf() -> bytes:
    """A PDF missing its cross-reference table and trailer, which PyMuPDF repairs."""
    data = text_pdf(2, marker="Repaired")
    return data[: data.rindex(b"xref")]


def control_characters_pdf() -> bytes:
    """A PDF whose text contains characters that XML 1.0 does not allow."""
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 80), "Bell\x07 and form\x0c feed and escape\x1b here", fontsize=12)
    return bytes(document.tobytes())
