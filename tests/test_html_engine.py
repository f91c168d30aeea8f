"""Tests for the WeasyPrint HTML engine, on real PDFs read back with PyMuPDF."""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest
import weasyprint  # type: ignore[import-untyped]
from PIL import Image

from app.engines import html as html_engine
from app.engines.html import (
    DataURLFetcher,
    PdfOptions,
    PdfResult,
    html_from_json,
    render_html_to_pdf,
)
from app.engines.pages import PAGE_SIZES
from app.errors import InputError, JobErrorCode

MAX_PAGES = 50
POINTS_PER_MM = 72 / 25.4

# Portrait page sizes in points, from the CSS Paged Media size keywords.
PORTRAIT_POINTS = {
    "A4": (595.28, 841.89),
    "Letter": (612.0, 792.0),
    "Legal": (612.0, 1008.0),
    "A3": (841.89, 1190.55),
    "A5": (419.53, 595.28),
}


def png_bytes(color: tuple[int, int, int] = (255, 0, 0), size: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_url(color: tuple[int, int, int] = (255, 0, 0)) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(color)).decode("ascii")


def render(tmp_path: Path, html: str, options: PdfOptions | None = None) -> tuple[Path, PdfResult]:
    dest = tmp_path / "out.pdf"
    result = render_html_to_pdf(html, dest, options or PdfOptions(), max_pages=MAX_PAGES)
    return dest, result


def open_pdf(path: Path) -> pymupdf.Document:
    return pymupdf.Document(path)


def page_points(path: Path) -> tuple[float, float]:
    with open_pdf(path) as document:
        rect = document[0].rect
        return rect.width, rect.height


def word_origin(path: Path, word: str) -> tuple[float, float]:
    """Return the top-left corner in points of the first occurrence of ``word`` on page 1."""
    with open_pdf(path) as document:
        found = document[0].search_for(word)
    assert found, f"{word!r} not found on page 1"
    return found[0].x0, found[0].y0


def center_color(path: Path) -> tuple[int, ...]:
    """Return the colour at the centre of page 1, inside the page margins."""
    with open_pdf(path) as document:
        pixmap = document[0].get_pixmap(dpi=18)
        return tuple(pixmap.pixel(pixmap.width // 2, pixmap.height // 2))


def leftover_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


class ConnectionRecorder:
    """TCP listener on 127.0.0.1 that accepts and records connections, then closes them."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._server.settimeout(0.05)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_until_stopped, daemon=True)
        self._thread.start()

    def _accept_until_stopped(self) -> None:
        while not self._stop.is_set():
            self._accept_one()

    def _accept_one(self) -> None:
        try:
            connection, peer = self._server.accept()
        except TimeoutError:
            return
        self.peers.append(peer)
        connection.close()

    def stop(self) -> list[tuple[str, int]]:
        """Stop the listener and return every connection it accepted, queued ones included."""
        if self._stop.is_set():
            return self.peers
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.settimeout(0.2)
        self._accept_one()
        self._server.close()
        return self.peers


@pytest.fixture
def recorder() -> Iterator[ConnectionRecorder]:
    listener = ConnectionRecorder()
    yield listener
    listener.stop()


def external_resources_html(port: int, local_png: Path) -> str:
    return f"""<!DOCTYPE html>
<html>
<head>
<link rel="stylesheet" href="https://127.0.0.1:{port}/a.css">
<link rel="stylesheet" href="//127.0.0.1:{port}/c.css">
<style>
@import url(http://127.0.0.1:{port}/b.css);
@font-face {{ font-family: Remote; src: url(http://127.0.0.1:{port}/f.woff) }}
body {{ font-family: Remote, sans-serif }}
.remote-background {{ background-image: url(http://127.0.0.1:{port}/bg.png) }}
</style>
</head>
<body>
<p class="remote-background">Still rendered</p>
<img src="http://127.0.0.1:{port}/x.png">
<img src="ftp://127.0.0.1:{port}/y.png">
<img src="file:///etc/hostname">
<img src="file://{local_png}">
<img src="{local_png.name}">
<img src="{local_png}">
</body>
</html>
"""


# --- Pages and text ---


def test_two_pages_contain_source_text(tmp_path: Path) -> None:
    html = '<p style="break-after: page">First page text</p><p>Second page text</p>'
    dest, result = render(tmp_path, html)

    assert result.page_count == 2
    assert result.size_bytes == dest.stat().st_size
    assert result.engine_version == f"WeasyPrint {weasyprint.__version__}"
    with open_pdf(dest) as document:
        assert document.page_count == 2
        assert "First page text" in document[0].get_text()
        assert "Second page text" in document[1].get_text()
        assert "Second page text" not in document[0].get_text()


def test_result_matches_written_file(tmp_path: Path) -> None:
    dest, result = render(tmp_path, "<p>Hello</p>")

    assert dest.read_bytes().startswith(b"%PDF-")
    assert result.size_bytes == dest.stat().st_size
    assert leftover_files(tmp_path) == ["out.pdf"]


def test_existing_dest_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "out.pdf"
    dest.write_bytes(b"old content")

    render_html_to_pdf("<p>New</p>", dest, PdfOptions(), max_pages=MAX_PAGES)

    assert dest.read_bytes().startswith(b"%PDF-")


# --- Page size, orientation, margins and background ---


@pytest.mark.parametrize("page_size", PAGE_SIZES)
def test_page_size_portrait(tmp_path: Path, page_size: str) -> None:
    dest, _ = render(tmp_path, "<p>Size</p>", PdfOptions(page_size=page_size))

    width, height = page_points(dest)
    expected_width, expected_height = PORTRAIT_POINTS[page_size]
    assert width == pytest.approx(expected_width, abs=0.5)
    assert height == pytest.approx(expected_height, abs=0.5)


def test_page_size_a4_and_letter(tmp_path: Path) -> None:
    (tmp_path / "a4").mkdir()
    (tmp_path / "letter").mkdir()
    a4, _ = render(tmp_path / "a4", "<p>A4</p>")
    letter, _ = render(tmp_path / "letter", "<p>Letter</p>", PdfOptions(page_size="Letter"))

    assert tuple(round(side) for side in page_points(a4)) == (595, 842)
    assert tuple(round(side) for side in page_points(letter)) == (612, 792)


@pytest.mark.parametrize(("page_size", "expected"), [("A4", (842, 595)), ("Letter", (792, 612))])
def test_landscape_swaps_sides(tmp_path: Path, page_size: str, expected: tuple[int, int]) -> None:
    options = PdfOptions(page_size=page_size, landscape=True)
    dest, _ = render(tmp_path, "<p>Wide</p>", options)

    assert tuple(round(side) for side in page_points(dest)) == expected


@pytest.mark.parametrize(
    ("margin", "expected_points"), [("10mm", 10 * POINTS_PER_MM), ("1in", 72.0), ("0", 0.0)]
)
def test_margin_moves_text(tmp_path: Path, margin: str, expected_points: float) -> None:
    html = "<body style='margin: 0'><p style='margin: 0'>Marker</p></body>"
    dest, _ = render(tmp_path, html, PdfOptions(margin=margin))

    x, y = word_origin(dest, "Marker")
    assert x == pytest.approx(expected_points, abs=2)
    # The line box adds a little space above the glyphs, so y is not exact.
    assert expected_points - 1 <= y <= expected_points + 6


def test_larger_margin_moves_text_further(tmp_path: Path) -> None:
    html = "<body style='margin: 0'><p style='margin: 0'>Marker</p></body>"
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small, _ = render(tmp_path / "small", html, PdfOptions(margin="5mm"))
    large, _ = render(tmp_path / "large", html, PdfOptions(margin="40mm"))

    small_x, small_y = word_origin(small, "Marker")
    large_x, large_y = word_origin(large, "Marker")
    assert large_x - small_x == pytest.approx(35 * POINTS_PER_MM, abs=1)
    assert large_y - small_y == pytest.approx(35 * POINTS_PER_MM, abs=1)


def test_document_page_rule_wins(tmp_path: Path) -> None:
    html = "<style>@page { size: Letter }</style><p>Own size</p>"
    dest, _ = render(tmp_path, html, PdfOptions(page_size="A3"))

    assert tuple(round(side) for side in page_points(dest)) == (612, 792)


def test_background_printed_by_default(tmp_path: Path) -> None:
    html = "<body style='background: rgb(255, 0, 0)'><p>Red page</p></body>"
    dest, _ = render(tmp_path, html)

    red, green, blue = center_color(dest)[:3]
    assert red > 200
    assert green < 50
    assert blue < 50


def test_background_dropped_when_disabled(tmp_path: Path) -> None:
    html = (
        "<style>@page { background: blue } p { background: green !important }</style>"
        "<body style='background: rgb(255, 0, 0)'><p>No colour</p></body>"
    )
    dest, _ = render(tmp_path, html, PdfOptions(print_background=False))

    assert center_color(dest)[:3] == (255, 255, 255)
    with open_pdf(dest) as document:
        assert document[0].get_drawings() == []


# --- Page limit and atomic writes ---


def test_max_pages_exceeded_raises(tmp_path: Path) -> None:
    dest = tmp_path / "out.pdf"
    html = "".join(f'<p style="break-after: page">Page {number}</p>' for number in range(3))

    with pytest.raises(InputError) as raised:
        render_html_to_pdf(html, dest, PdfOptions(), max_pages=2)

    assert raised.value.code == JobErrorCode.INPUT_TOO_LARGE
    assert "3 pages" in raised.value.message
    assert "limit of 2 pages" in raised.value.message
    assert not dest.exists()
    assert leftover_files(tmp_path) == []


def test_max_pages_reached_allowed(tmp_path: Path) -> None:
    dest = tmp_path / "out.pdf"
    html = '<p style="break-after: page">One</p><p>Two</p>'

    result = render_html_to_pdf(html, dest, PdfOptions(), max_pages=2)

    assert result.page_count == 2
    assert dest.exists()


def test_max_pages_below_one_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_pages"):
        render_html_to_pdf("<p>x</p>", tmp_path / "out.pdf", PdfOptions(), max_pages=0)


def test_write_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "out.pdf"
    dest.write_bytes(b"previous")

    def write_half_then_fail(self: object, target: io.BufferedWriter, **kwargs: object) -> None:
        target.write(b"%PDF-1.7 partial")
        raise OSError("disk full")

    monkeypatch.setattr(weasyprint.Document, "write_pdf", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        render_html_to_pdf("<p>x</p>", dest, PdfOptions(), max_pages=MAX_PAGES)

    assert dest.read_bytes() == b"previous"
    assert leftover_files(tmp_path) == ["out.pdf"]


# --- Resources ---


def test_data_image_embedded(tmp_path: Path) -> None:
    html = f'<p>Picture:</p><img src="{png_data_url()}" style="width: 20mm">'
    dest, _ = render(tmp_path, html)

    with open_pdf(dest) as document:
        images = document[0].get_images()
    assert len(images) == 1


def test_data_stylesheet_applied(tmp_path: Path) -> None:
    stylesheet = base64.b64encode(b"p { margin: 0; padding-left: 100pt }").decode("ascii")
    html = (
        f'<link rel="stylesheet" href="data:text/css;base64,{stylesheet}">'
        "<body style='margin: 0'><p>Indented</p></body>"
    )
    dest, _ = render(tmp_path, html, PdfOptions(margin="0"))

    x, _ = word_origin(dest, "Indented")
    assert x == pytest.approx(100, abs=2)


def test_no_network_or_file_access(
    tmp_path: Path, recorder: ConnectionRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    local_png = tmp_path / "pixel.png"
    local_png.write_bytes(png_bytes())
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    html = external_resources_html(recorder.port, local_png)

    with caplog.at_level(logging.INFO, logger=html_engine.__name__):
        dest, result = render(out_folder, html)
    peers = recorder.stop()

    assert peers == []
    assert result.page_count == 1
    with open_pdf(dest) as document:
        assert "Still rendered" in document[0].get_text()
        assert document[0].get_images() == []

    engine_messages = [
        record.getMessage() for record in caplog.records if record.name == html_engine.__name__
    ]
    assert all(
        record.levelno == logging.INFO
        for record in caplog.records
        if record.name == html_engine.__name__
    )
    # Four http URLs are in the HTML, and only the first is logged.
    assert sum("the http scheme" in message for message in engine_messages) == 1
    assert sum("the https scheme" in message for message in engine_messages) == 1
    assert sum("the ftp scheme" in message for message in engine_messages) == 1
    assert sum("the file scheme" in message for message in engine_messages) == 1
    assert not any("127.0.0.1" in message for message in engine_messages)
    assert not any("hostname" in message for message in engine_messages)


def test_relative_url_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pixel.png").write_bytes(png_bytes())
    monkeypatch.chdir(tmp_path)
    out_folder = tmp_path / "out"
    out_folder.mkdir()

    dest, _ = render(out_folder, '<p>Relative</p><img src="pixel.png">')

    with open_pdf(dest) as document:
        assert document[0].get_images() == []


def test_listener_sees_default_fetcher(tmp_path: Path, recorder: ConnectionRecorder) -> None:
    """Control for the no-network test: WeasyPrint's own fetcher does connect."""
    local_png = tmp_path / "pixel.png"
    local_png.write_bytes(png_bytes())
    html = external_resources_html(recorder.port, local_png)

    default_fetcher = weasyprint.urls.URLFetcher(timeout=2)
    document = weasyprint.HTML(string=html, url_fetcher=default_fetcher).render()
    peers = recorder.stop()

    assert len(peers) >= 3
    pdf_path = tmp_path / "default-fetcher.pdf"
    document.write_pdf(target=pdf_path)
    with open_pdf(pdf_path) as pdf:
        # The image at the file: URL of the local PNG.
        assert len(pdf[0].get_images()) == 1


def test_fetcher_rejects_without_request(recorder: ConnectionRecorder) -> None:
    fetcher = DataURLFetcher()
    address = f"127.0.0.1:{recorder.port}"

    for url in (
        f"http://{address}/x.png",
        f"https://{address}/x.png",
        f"HTTP://{address}/x.png",
        "file:///etc/hostname",
        f"ftp://{address}/x",
        f"gopher://{address}/x",
        "pixel.png",
        f"//{address}/x.png",
    ):
        with pytest.raises(ValueError, match="only data: URLs are allowed"):
            fetcher.fetch(url)

    assert recorder.stop() == []
    assert fetcher.rejected_schemes == {
        "http": 2,
        "https": 1,
        "file": 1,
        "ftp": 1,
        "gopher": 1,
        "relative": 2,
    }


def test_fetcher_decodes_data_url() -> None:
    response = DataURLFetcher().fetch("data:text/plain;base64,aGVsbG8=")

    assert response.read() == b"hello"
    assert response.content_type == "text/plain"


# --- html_from_json ---


def test_json_body_only_wrapped() -> None:
    document = html_from_json({"html": "<p>Body</p>"})

    assert document.startswith("<!DOCTYPE html>")
    assert "<body>\n<p>Body</p>\n</body>" in document
    assert "<title>" not in document
    assert "<style>" not in document


def test_json_full_document_with_head() -> None:
    source = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<style>p { color: red }</style></head><body><p>Hi</p></body></html>"
    )
    document = html_from_json({"html": source, "css": "p { color: blue }", "title": "Report"})

    assert document.count("<head>") == 1
    assert document.count("<html") == 1
    head = document[document.index("<head>") : document.index("</head>")]
    assert head.index("<title>Report</title>") < head.index("<meta charset='utf-8'>")
    assert head.index("p { color: red }") < head.index("p { color: blue }")
    assert document.endswith("<body><p>Hi</p></body></html>")


def test_json_full_document_unchanged() -> None:
    source = "<html><head><title>Own</title></head><body>x</body></html>"

    assert html_from_json({"html": source}) == source


def test_json_full_document_without_head() -> None:
    source = "<HTML lang='en'><body><p>No head</p></body></HTML>"
    document = html_from_json({"html": source, "title": "Added"})

    assert document.startswith("<HTML lang='en'>\n<head>\n<title>Added</title>\n</head>\n")
    assert document.endswith("<body><p>No head</p></body></HTML>")


def test_json_header_tag_not_head() -> None:
    document = html_from_json({"html": "<header>Top</header>", "title": "T"})

    assert document.startswith("<!DOCTYPE html>")
    assert "<head>\n<title>T</title>\n</head>" in document
    assert "<body>\n<header>Top</header>\n</body>" in document


def test_json_title_escaped() -> None:
    document = html_from_json({"html": "<p>x</p>", "title": "</title><script>&"})

    assert "<title>&lt;/title&gt;&lt;script&gt;&amp;</title>" in document


def test_json_css_cannot_close_style() -> None:
    css = "p::after { content: '</style><p>injected' }"
    document = html_from_json({"html": "<p>x</p>", "css": css})

    assert document.count("</style>") == 1
    assert "<\\/style>" in document


def test_json_css_and_title_render(tmp_path: Path) -> None:
    payload = {
        "html": "<p class='moved'>Styled</p>",
        "css": "body { margin: 0 } .moved { margin: 0; padding-left: 50pt }",
        "title": "Quarterly <report>",
    }
    dest, _ = render(tmp_path, html_from_json(payload), PdfOptions(margin="0"))

    x, _ = word_origin(dest, "Styled")
    assert x == pytest.approx(50, abs=2)
    with open_pdf(dest) as document:
        assert document.metadata is not None
        assert document.metadata["title"] == "Quarterly <report>"


def test_json_missing_html() -> None:
    with pytest.raises(InputError) as raised:
        html_from_json({"css": "p {}"})

    assert raised.value.code == JobErrorCode.INPUT_CORRUPT
    assert "'html'" in raised.value.message
    assert "missing" in raised.value.message


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "null"), (42, "a number"), (["<p>"], "an array"), ({"a": 1}, "an object")],
)
def test_json_html_not_string(value: object, type_name: str) -> None:
    with pytest.raises(InputError) as raised:
        html_from_json({"html": value})

    assert raised.value.code == JobErrorCode.INPUT_CORRUPT
    assert "'html' string" in raised.value.message
    assert type_name in raised.value.message


@pytest.mark.parametrize("key", ["css", "title"])
def test_json_optional_key_not_string(key: str) -> None:
    with pytest.raises(InputError) as raised:
        html_from_json({"html": "<p>x</p>", key: 3})

    assert raised.value.code == JobErrorCode.INPUT_CORRUPT
    assert f"'{key}'" in raised.value.message


def test_json_payload_not_object() -> None:
    with pytest.raises(InputError) as raised:
        html_from_json(["<p>x</p>"])  # type: ignore[arg-type]

    assert raised.value.code == JobErrorCode.INPUT_CORRUPT
    assert "JSON object" in raised.value.message


# --- Option validation ---


@pytest.mark.parametrize(
    "margin",
    [
        "20",
        "20 mm",
        "-5mm",
        "20MM",
        "1e2mm",
        "20mm;",
        "20mm }",
        "calc(1in)",
        "",
        "0.mm",
        "5%",
        "20vw",
    ],
)
def test_invalid_margin_rejected(margin: str) -> None:
    with pytest.raises(ValueError, match="margin"):
        PdfOptions(margin=margin)


@pytest.mark.parametrize(
    "margin", ["0", "0mm", "20mm", "1in", "2.5cm", ".5in", "12pt", "3pc", "40px", "2em", "1.5rem"]
)
def test_valid_margin_accepted(margin: str) -> None:
    assert PdfOptions(margin=margin).margin == margin


@pytest.mark.parametrize(
    ("margin", "page_size"), [("105mm", "A4"), ("74mm", "A5"), ("5in", "Letter")]
)
def test_margin_too_large_rejected(margin: str, page_size: str) -> None:
    with pytest.raises(ValueError, match="no room for content"):
        PdfOptions(margin=margin, page_size=page_size)


@pytest.mark.parametrize("page_size", ["a4", "B5", "Tabloid", "", "A4 landscape"])
def test_invalid_page_size_rejected(page_size: str) -> None:
    with pytest.raises(ValueError, match="page_size"):
        PdfOptions(page_size=page_size)
