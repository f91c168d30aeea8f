"""Identification of Office inputs from their bytes, before LibreOffice opens them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from app.engines import office_formats
from app.engines.office_formats import (
    CSV,
    DOCX,
    ODT,
    PPTX,
    RTF,
    XLSX,
    identify_office_file,
)
from app.errors import InputError, JobErrorCode
from tests import documents


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "input"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (documents.make_docx(), DOCX),
        (documents.make_pptx(), PPTX),
        (documents.make_xlsx(), XLSX),
        (documents.make_odt(), ODT),
        (documents.make_csv(), CSV),
        (b"{\\rtf1\\ansi Hello}", RTF),
    ],
)
def test_identifies_declared_type(tmp_path: Path, data: bytes, content_type: str) -> None:
    assert identify_office_file(_write(tmp_path, data), content_type).content_type == content_type


def test_rtf_under_text_rtf(tmp_path: Path) -> None:
    path = _write(tmp_path, b"{\\rtf1\\ansi Hello}")
    assert identify_office_file(path, "text/rtf").content_type == RTF


def _error(path: Path, content_type: str) -> InputError:
    with pytest.raises(InputError) as caught:
        identify_office_file(path, content_type)
    return caught.value


def test_xlsx_declared_as_docx_mismatch(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, documents.make_xlsx()), DOCX)
    assert error.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert XLSX in error.message


def test_png_declared_as_docx_mismatch(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(100)), DOCX)
    assert error.code is JobErrorCode.INPUT_TYPE_MISMATCH


def test_plain_zip_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "input"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    assert _error(path, DOCX).code is JobErrorCode.INPUT_TYPE_MISMATCH


def test_truncated_docx_corrupt(tmp_path: Path) -> None:
    data = documents.make_docx()
    error = _error(_write(tmp_path, data[: len(data) // 2]), DOCX)
    assert error.code is JobErrorCode.INPUT_CORRUPT


def test_encrypted_docx(tmp_path: Path) -> None:
    data = documents.encrypt_ooxml(documents.make_docx())
    error = _error(_write(tmp_path, data), DOCX)
    assert error.code is JobErrorCode.INPUT_ENCRYPTED
    assert "password" in error.message


def test_encrypted_xlsx(tmp_path: Path) -> None:
    data = documents.encrypt_ooxml(documents.make_xlsx())
    assert _error(_write(tmp_path, data), XLSX).code is JobErrorCode.INPUT_ENCRYPTED


def test_encrypted_odt(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, documents.make_encrypted_odt()), ODT)
    assert error.code is JobErrorCode.INPUT_ENCRYPTED


def test_compression_bomb_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office_formats, "MAX_UNPACKED_BYTES", 1024 * 1024)
    path = tmp_path / "input"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        source = zipfile.ZipFile(io.BytesIO(documents.make_docx()))
        for item in source.infolist():
            archive.writestr(item.filename, source.read(item.filename))
        archive.writestr("word/padding.xml", b" " * (2 * 1024 * 1024))
    assert path.stat().st_size < 100_000
    error = _error(path, DOCX)
    assert error.code is JobErrorCode.INPUT_TOO_LARGE
    assert "1 MiB" in error.message


def test_csv_not_utf8_corrupt(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "name\ncafé\n".encode("latin-1")), CSV)
    assert error.code is JobErrorCode.INPUT_CORRUPT
    assert "UTF-8" in error.message


def test_csv_with_nul_bytes_mismatch(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, b"a,b\n\x00\x01\x02"), CSV)
    assert error.code is JobErrorCode.INPUT_TYPE_MISMATCH
