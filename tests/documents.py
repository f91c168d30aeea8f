"""Office documents that the tests generate: DOCX, PPTX and XLSX with python-docx, python-pptx
and openpyxl, CSV text, hand-built ODF packages, and password-protected files."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import docx
import msoffcrypto.format.ooxml
import openpyxl
import pptx
from docx.enum.text import WD_BREAK
from docx.oxml.ns import qn

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT_TYPE = "application/vnd.oasis.opendocument.text"


def _saved(document: docx.document.Document | pptx.presentation.Presentation) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_docx(pages: int = 3, marker: str = "Worklane") -> bytes:
    """A DOCX with one heading and a short paragraph per page, split by page breaks."""
    document = docx.Document()
    for page in range(1, pages + 1):
        document.add_heading(f"{marker} heading {page}", level=1)
        paragraph = document.add_paragraph(f"{marker} text on page {page}.")
        if page < pages:
            paragraph.add_run().add_break(WD_BREAK.PAGE)
    return _saved(document)


def make_docx_with_filename_field() -> bytes:
    """A DOCX whose only paragraph is a FILENAME field that prints the file's full path."""
    document = docx.Document()
    paragraph = document.add_paragraph("Path: ")
    field = paragraph._p.makeelement(qn("w:fldSimple"), {qn("w:instr"): "FILENAME \\p"})
    run = field.makeelement(qn("w:r"), {})
    text = run.makeelement(qn("w:t"), {})
    text.text = "placeholder"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)
    return _saved(document)


def make_docx_in_fonts(fonts: list[str]) -> bytes:
    """A DOCX with one paragraph set in each of ``fonts``."""
    document = docx.Document()
    for font in fonts:
        document.add_paragraph().add_run(f"Set in {font}").font.name = font
    return _saved(document)


def make_long_docx(pages: int) -> bytes:
    """A DOCX of ``pages`` pages of dense text, slow for LibreOffice to lay out.

    The body is written as XML directly, because python-docx takes seconds per thousand pages.
    """
    line = "Long document line with enough words to fill the width of the page. " * 4
    paragraph = f"<w:p><w:r><w:t>{line}</w:t></w:r></w:p>"
    page_break = '<w:p><w:r><w:br w:type="page"/></w:r></w:p>'
    body = "".join(
        f"<w:p><w:r><w:t>Part {page + 1}</w:t></w:r></w:p>" + paragraph * 7 + page_break
        for page in range(pages)
    )
    template = io.BytesIO(_saved(docx.Document()))
    output = io.BytesIO()
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(output, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                xml = data.decode("utf-8")
                xml = xml.replace("<w:body>", "<w:body>" + body, 1)
                data = xml.encode("utf-8")
            target.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    return output.getvalue()


def make_pptx(slides: int = 4, marker: str = "Worklane") -> bytes:
    presentation = pptx.Presentation()
    for number in range(1, slides + 1):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = f"{marker} slide {number}"
        slide.placeholders[1].text = f"Point {number}"
    return _saved(presentation)


def make_xlsx(rows: int = 30, columns: int = 6, marker: str = "Worklane") -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Data"
    # Headers short enough for the default column width, so that none is cut off.
    sheet.append([f"{marker}{column}" for column in range(1, columns + 1)])
    for row in range(1, rows + 1):
        sheet.append([row * column for column in range(1, columns + 1)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_csv(marker: str = "Worklane") -> bytes:
    lines = [f"name,amount,{marker}"] + [f"item {row},{row * 10},café {row}" for row in range(1, 6)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def encrypt_ooxml(data: bytes, password: str = "secret") -> bytes:
    """Encrypt a DOCX, PPTX or XLSX the way Office does when a password is set."""
    output = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(data)).encrypt(password, output)
    return output.getvalue()


_ODF_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
 manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"""

_ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content
 xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.2">
 <office:body><office:text>{body}</office:text></office:body>
</office:document-content>
"""


def _odf_package(mimetype: str, content: str, manifest: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # ODF requires the mimetype entry first and uncompressed.
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "META-INF/manifest.xml", manifest or _ODF_MANIFEST.format(mimetype=mimetype)
        )
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def make_odt(marker: str = "Worklane", remote_url: str | None = None) -> bytes:
    """An ODT with a paragraph, and a linked image and a hyperlink to ``remote_url`` if given."""
    body = f"<text:h text:outline-level='1'>{marker} heading</text:h>"
    body += f"<text:p>{marker} text in an OpenDocument file.</text:p>"
    if remote_url:
        body += (
            "<text:p><draw:frame svg:width='4cm' svg:height='3cm' text:anchor-type='paragraph'>"
            f"<draw:image xlink:href='{remote_url}/image.png' xlink:type='simple' "
            "xlink:show='embed' xlink:actuate='onLoad'/></draw:frame>"
            f"<text:a xlink:type='simple' xlink:href='{remote_url}/link'>a link</text:a></text:p>"
        )
    return _odf_package(ODT_TYPE, _ODT_CONTENT.format(body=body))


def make_encrypted_odt() -> bytes:
    """An ODT whose manifest marks content.xml as encrypted, as a password-protected one does."""
    manifest = _ODF_MANIFEST.format(mimetype=ODT_TYPE).replace(
        'manifest:media-type="text/xml"/>',
        'manifest:media-type="text/xml" manifest:size="100">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        'manifest:initialisation-vector="AAAA"/></manifest:encryption-data>'
        "</manifest:file-entry>",
    )
    return _odf_package(ODT_TYPE, "encrypted bytes", manifest)


def convert_with_soffice(data: bytes, source_suffix: str, target: str, folder: Path) -> bytes:
    """Convert a document with a cold ``soffice --convert-to``, to build ODF test inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"source{source_suffix}"
    source.write_bytes(data)
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={(folder / 'profile').resolve().as_uri()}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(folder),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (folder / f"source.{target}").read_bytes()
