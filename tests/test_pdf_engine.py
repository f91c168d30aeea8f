"""PDF tools on generated PDFs: content, quality metadata, limits and bad files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import docx
import pytest
from PIL import Image

from app.engines import pdf
from app.errors import InputError, JobErrorCode
from tests import pdfs


def _source(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "input.pdf"
    path.write_bytes(data)
    return path


def _run(function: Any, tmp_path: Path, data: bytes, suffix: str, **options: Any) -> Any:
    options = {"page_ranges": None, "max_pages": 1000, **options}
    target = tmp_path / f"output{suffix}"
    metadata = function(_source(tmp_path, data), target, **options)
    return metadata, target


# Pages to images


def test_images_zip_names_and_sizes(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_images_zip, tmp_path, pdfs.mixed_pdf(), ".zip", dpi=72)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        rotated = Image.open(io.BytesIO(archive.read("page-003.png")))
        assert rotated.size == (842, 595)
    assert names == ["page-001.png", "page-002.png", "page-003.png", "page-004.png"]
    assert metadata["pageCount"] == 4
    assert metadata["dpi"] == 72
    assert metadata["pages"][0] == {"page": 1, "width": 595, "height": 842}
    assert metadata["pages"][2] == {"page": 3, "width": 842, "height": 595}
    assert metadata["zipBytes"] == target.stat().st_size


def test_images_zip_page_range_and_dpi(tmp_path: Path) -> None:
    data = pdfs.text_pdf(pages=5)
    metadata, target = _run(
        pdf.pdf_to_images_zip, tmp_path, data, ".zip", dpi=144, page_ranges=[(2, 3), (5, 9)]
    )
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["page-002.png", "page-003.png", "page-005.png"]
    assert metadata["pages"][0]["width"] == 1190


def test_images_zip_pixel_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "MAX_PAGE_PIXELS", 1_000_000)
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_images_zip, tmp_path, pdfs.text_pdf(1), ".zip", dpi=300)
    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "lower dpi" in caught.value.message
    assert not (tmp_path / "output.zip").exists()


def test_images_zip_guard_at_lowest_dpi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "MAX_PAGE_PIXELS", 100_000)
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_images_zip, tmp_path, pdfs.text_pdf(1), ".zip", dpi=72)
    assert "lower dpi" not in caught.value.message
    assert "pageRange" in caught.value.message


def test_images_zip_total_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "MAX_TOTAL_PIXELS", 3_000_000)
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_images_zip, tmp_path, pdfs.text_pdf(3), ".zip", dpi=150)
    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "per job" in caught.value.message


def test_progress_reported_per_page(tmp_path: Path) -> None:
    seen: list[float] = []
    _run(pdf.pdf_to_text, tmp_path, pdfs.text_pdf(4), ".txt", report_progress=seen.append)
    assert seen == [0.25, 0.5, 0.75, 1.0]


# Text


def test_text_pages_split_by_form_feed(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_text, tmp_path, pdfs.text_pdf(3, "Alpha"), ".txt")
    pages = target.read_text(encoding="utf-8").split("\f")
    assert len(pages) == 3
    assert "Alpha chapter 2" in pages[1]
    assert "Alpha body line 30 on page 3." in pages[2]
    assert metadata["textLayer"] == "full"
    assert metadata["ocr"] is False


def test_text_reports_scanned_page(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_text, tmp_path, pdfs.mixed_pdf(), ".txt")
    pages = target.read_text(encoding="utf-8").split("\f")
    assert pages[1] == ""
    assert "Text on a rotated page." in pages[2]
    assert metadata["pagesWithoutText"] == [2]
    assert metadata["pagesWithoutTextShare"] == 0.25
    assert metadata["textLayer"] == "partial"


def test_text_of_scan_only_pdf(tmp_path: Path) -> None:
    metadata, _ = _run(pdf.pdf_to_text, tmp_path, pdfs.scanned_pdf(2), ".txt")
    assert metadata["textLayer"] == "none"
    assert metadata["pagesWithoutText"] == [1, 2]
    assert metadata["characters"] == 0


# Markdown


def test_markdown_headings_and_table(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_markdown, tmp_path, pdfs.mixed_pdf(), ".md")
    markdown = target.read_text(encoding="utf-8")
    assert "# Introduction" in markdown
    assert "|Apple|1.20|" in markdown.replace(" ", "")
    assert metadata["headings"] >= 2
    assert metadata["tables"] == 1
    assert metadata["pagesWithoutText"] == [2]
    assert metadata["grade"] == "fair"
    assert metadata["gradeReasons"][0] == "page 2 has no text layer"
    assert "pages 3" in metadata["gradeReasons"][1]
    assert metadata["pagesWithLostText"] == [3]
    assert len(metadata["charactersPerPage"]) == 4
    assert metadata["charactersPerPage"][1] == 0


def test_markdown_grade_poor_for_scans(tmp_path: Path) -> None:
    metadata, _ = _run(pdf.pdf_to_markdown, tmp_path, pdfs.scanned_pdf(), ".md")
    assert metadata["grade"] == "poor"
    assert "OCR" in metadata["gradeReasons"][0]


def test_markdown_grade_good(tmp_path: Path) -> None:
    metadata, _ = _run(pdf.pdf_to_markdown, tmp_path, pdfs.text_pdf(3), ".md")
    assert metadata["grade"] == "good"
    assert metadata["gradeReasons"] == []


# DOCX


def test_docx_headings_and_paragraphs(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_docx, tmp_path, pdfs.text_pdf(2, "Beta"), ".docx")
    document = docx.Document(str(target))
    styles = [(p.style.name if p.style else "", p.text) for p in document.paragraphs]
    headings = [text for style, text in styles if style.startswith("Heading")]
    body = [text for style, text in styles if style == "Normal"]
    assert headings == ["Beta chapter 1", "Beta chapter 2"]
    assert any("Beta body line 5 on page 2." in text for text in body)
    assert metadata["textOnly"] is True
    assert metadata["images"] is False
    assert metadata["tables"] is False
    assert metadata["headings"] == 2


def test_docx_drops_xml_invalid_characters(tmp_path: Path) -> None:
    _, target = _run(pdf.pdf_to_docx, tmp_path, pdfs.control_characters_pdf(), ".docx")
    text = " ".join(p.text for p in docx.Document(str(target)).paragraphs)
    assert "Bell" in text
    assert "escape" in text
    assert "\x07" not in text


# Bad files and limits


@pytest.mark.parametrize("function", [pdf.pdf_to_text, pdf.pdf_to_markdown, pdf.pdf_to_docx])
def test_encrypted_pdf_rejected(tmp_path: Path, function: Any) -> None:
    with pytest.raises(InputError) as caught:
        _run(function, tmp_path, pdfs.encrypted_pdf(), ".out")
    assert caught.value.code is JobErrorCode.INPUT_ENCRYPTED


def test_restricted_pdf_converts(tmp_path: Path) -> None:
    _, target = _run(pdf.pdf_to_text, tmp_path, pdfs.restricted_pdf(), ".txt")
    assert "Restricted chapter 1" in target.read_text(encoding="utf-8")


def test_truncated_pdf_repaired(tmp_path: Path) -> None:
    metadata, target = _run(pdf.pdf_to_text, tmp_path, pdfs.truncated_pdf(), ".txt")
    assert metadata["repaired"] is True
    assert "Repaired chapter 2" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "data",
    [b"not a pdf at all", b"%PDF-1.7\n" + bytes(200), b"", pdfs.text_pdf(1)[:200]],
)
def test_unreadable_file_corrupt(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_text, tmp_path, data, ".txt")
    assert caught.value.code is JobErrorCode.INPUT_CORRUPT


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"<!doctype html><html><body>not a PDF</body></html>", "text/html"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"),
    ],
)
def test_other_format_mismatch(tmp_path: Path, data: bytes, detected: str) -> None:
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_text, tmp_path, data, ".txt")
    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert detected in caught.value.message


def test_blank_pages_have_no_text_layer(tmp_path: Path) -> None:
    metadata, _ = _run(pdf.pdf_to_text, tmp_path, pdfs.blank_pdf(2), ".txt")
    assert metadata["textLayer"] == "none"
    assert metadata["blankPages"] == [1, 2]


def test_page_limit(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_text, tmp_path, pdfs.text_pdf(5), ".txt", max_pages=3)
    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "pageRange" in caught.value.message


def test_page_range_within_limit(tmp_path: Path) -> None:
    metadata, _ = _run(
        pdf.pdf_to_text, tmp_path, pdfs.text_pdf(5), ".txt", max_pages=3, page_ranges=[(4, 5)]
    )
    assert metadata["pageCount"] == 2
    assert metadata["documentPages"] == 5


def test_page_range_past_end(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _run(pdf.pdf_to_text, tmp_path, pdfs.text_pdf(2), ".txt", page_ranges=[(3, 4)])
    assert caught.value.code is JobErrorCode.INVALID_OPTIONS
    assert "2 pages" in caught.value.message
