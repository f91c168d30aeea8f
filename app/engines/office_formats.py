"""Identify an Office document from its bytes: format, and whether a password protects it.

The check runs before LibreOffice opens the file, so that a document of the wrong kind or an
encrypted one fails at once with a precise error code. For OOXML and ODF it reads the ZIP
directory and one manifest, then decompresses every part to count the unpacked bytes. For the
legacy binary formats and encrypted OOXML it reads the compound-file directory, for RTF the
first bytes, and for CSV the whole file as a streaming UTF-8 check.
"""

from __future__ import annotations

import codecs
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import olefile

from app.errors import InputError, JobErrorCode

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
RTF = "application/rtf"
CSV = "text/csv"

OFFICE_TYPES = frozenset({DOCX, XLSX, PPTX, ODT, ODS, ODP, DOC, XLS, PPT, RTF, "text/rtf", CSV})
"""Content types that ``identify_office_file`` checks."""

_CFB_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_MANIFEST_BYTES = 1024 * 1024
_READ_CHUNK_BYTES = 1024 * 1024

MAX_UNPACKED_BYTES = 256 * 1024 * 1024
"""Largest total size of an OOXML or ODF package's parts once decompressed.

A document whose XML unpacks to more keeps LibreOffice busy for minutes and gigabytes, and a
small file that unpacks to that much is a compression bomb.
"""

# Content type of each OOXML main document part, with its macro-enabled and template variants.
_OOXML_MAIN_PARTS: dict[str, str] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.ms-word.document.macroenabled.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": XLSX,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": PPTX,
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": PPTX,
}

# Streams that name a legacy binary format inside a compound file.
_CFB_STREAMS: tuple[tuple[str, str], ...] = (
    ("worddocument", DOC),
    ("workbook", XLS),
    ("book", XLS),
    ("powerpoint document", PPT),
)

_ENCRYPTED_MESSAGE = (
    "The document is protected by a password. Remove the password in your office suite and "
    "upload it again."
)


@dataclass(frozen=True)
class OfficeFile:
    content_type: str
    """Content type that the bytes show; RTF is reported as application/rtf."""


def identify_office_file(path: Path, declared_content_type: str) -> OfficeFile:
    """Check that the file at ``path`` is a readable document of the declared type.

    Raises InputError with ``input_encrypted`` for a password-protected OOXML or ODF file,
    ``input_type_mismatch`` when the bytes show another format, and ``input_corrupt`` when
    they show none or a CSV file is not UTF-8 text.
    """
    declared = RTF if declared_content_type == "text/rtf" else declared_content_type
    with path.open("rb") as file:
        head = file.read(8)

    if declared == CSV:
        _check_csv(path)
        return OfficeFile(CSV)
    if head.startswith(b"PK\x03\x04"):
        detected = _identify_zip(path)
    elif head == _CFB_SIGNATURE:
        detected = _identify_compound_file(path)
    elif head.startswith(b"{\\rtf"):
        detected = RTF
    else:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file was declared as {declared_content_type} but its bytes are not an "
            "Office document. Upload the document itself.",
        )

    if detected != declared:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file was declared as {declared_content_type} but its bytes are {detected}. "
            "Declare the file's real type, or use the tool for that type.",
        )
    return OfficeFile(detected)


def _identify_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                content_type = _identify_odf(archive)
            elif "[Content_Types].xml" in names:
                content_type = _identify_ooxml(archive)
            else:
                raise InputError(
                    JobErrorCode.INPUT_TYPE_MISMATCH,
                    "The file is a ZIP archive, not an Office document: it has neither the "
                    "[Content_Types].xml of OOXML nor the mimetype entry of OpenDocument. "
                    "Upload the document itself, not an archive that contains it.",
                )
            _check_unpacked_size(archive)
            return content_type
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            "The document is a damaged ZIP archive. Save it again in your office suite.",
        ) from err


def _check_unpacked_size(archive: zipfile.ZipFile) -> None:
    """Decompress every part, counting bytes, and stop at MAX_UNPACKED_BYTES.

    The sizes in the ZIP directory are not trusted, because a crafted file can understate them.
    """
    total = 0
    for info in archive.infolist():
        with archive.open(info) as member:
            while chunk := member.read(_READ_CHUNK_BYTES):
                total += len(chunk)
                if total > MAX_UNPACKED_BYTES:
                    raise InputError(
                        JobErrorCode.INPUT_TOO_LARGE,
                        f"The document unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)}"
                        " MiB, the limit for office documents. Split it into smaller documents.",
                    )


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"The document's {name} is {info.file_size} bytes, larger than any real one.",
        )
    return archive.read(name)


def _identify_odf(archive: zipfile.ZipFile) -> str:
    mimetype = _read_member(archive, "mimetype").decode("ascii", "replace").strip()
    if "META-INF/manifest.xml" in archive.namelist():
        manifest = _read_member(archive, "META-INF/manifest.xml")
        if b"encryption-data" in manifest:
            raise InputError(JobErrorCode.INPUT_ENCRYPTED, _ENCRYPTED_MESSAGE)
    return mimetype


def _identify_ooxml(archive: zipfile.ZipFile) -> str:
    content_types = _read_member(archive, "[Content_Types].xml").decode("utf-8", "replace").lower()
    for part_type, content_type in _OOXML_MAIN_PARTS.items():
        if f'contenttype="{part_type}"' in content_types:
            return content_type
    return "an OOXML package without a document, workbook or presentation"


def _identify_compound_file(path: Path) -> str:
    try:
        with olefile.OleFileIO(str(path)) as compound:
            streams = {"/".join(entry).lower() for entry in compound.listdir()}
    except (OSError, ValueError, IndexError) as err:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            "The document is a damaged compound file. Save it again in your office suite.",
        ) from err
    if "encryptioninfo" in streams and "encryptedpackage" in streams:
        raise InputError(JobErrorCode.INPUT_ENCRYPTED, _ENCRYPTED_MESSAGE)
    for stream, content_type in _CFB_STREAMS:
        if stream in streams:
            return content_type
    return "a compound file without a Word, Excel or PowerPoint stream"


def _check_csv(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            if b"\x00" in chunk:
                raise InputError(
                    JobErrorCode.INPUT_TYPE_MISMATCH,
                    "The CSV file contains NUL bytes, so it is binary data or UTF-16 text. "
                    "Save it as UTF-8 text.",
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise InputError(
                    JobErrorCode.INPUT_CORRUPT,
                    f"The CSV file is not valid UTF-8 near byte {offset + err.start}. "
                    "Save it as UTF-8.",
                ) from err
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise InputError(
                JobErrorCode.INPUT_CORRUPT, "The CSV file ends inside a UTF-8 character."
            ) from err
