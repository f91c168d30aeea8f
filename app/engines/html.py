"""Render HTML to PDF with WeasyPrint, with no network access and no reads of local files.

The only external resources that a document can use are ``data:`` URLs, which are
decoded in memory. Every other URL is rejected before any request is made. Fonts
installed on the machine are still used, also through ``@font-face`` ``local()``
sources. The functions are pure and blocking. Workers run them in a child process
through ``app.engines.isolated`` so that a canceled conversion can be killed.
"""

from __future__ import annotations

import html as html_escaping
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import weasyprint  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

from app.engines.files import write_atomically
from app.engines.pages import PAGE_SIZES, check_margin
from app.errors import InputError, JobErrorCode

logger = logging.getLogger(__name__)

# WeasyPrint logs every skipped resource with its full URL at ERROR level (seen with 70.0).
# Refusals are expected here and logged above without the URL, which is user input that can
# carry credentials, so only its critical messages pass.
logging.getLogger("weasyprint").setLevel(logging.CRITICAL)

# The scheme of an absolute URL: a letter, then letters, digits, "+", "-" or ".".
_URL_SCHEME_PATTERN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_MAX_LOGGED_SCHEME_LENGTH = 32

_HTML_START_TAG = re.compile(r"<html(?=[\s/>])[^>]*>", re.IGNORECASE)
_HEAD_START_TAG = re.compile(r"<head(?=[\s/>])[^>]*>", re.IGNORECASE)
_HEAD_END_TAG = re.compile(r"</head\s*>", re.IGNORECASE)

_NO_BACKGROUND_CSS = """
html, body, *, *::before, *::after { background: none !important }
@page { background: none !important }
"""


@dataclass(frozen=True)
class PdfOptions:
    """Page size, orientation, margins and background printing of a rendered PDF.

    The values are applied as a user stylesheet. Following the CSS cascade, ``@page``
    rules in the document itself take precedence over ``page_size``, ``landscape`` and
    ``margin``. ``print_background=False`` uses ``!important`` declarations, so it
    removes backgrounds that the document sets too. Raises ValueError for a page size
    outside PAGE_SIZES, a margin that is not a CSS length, or a margin that leaves no
    room for content.
    """

    page_size: str = "A4"
    landscape: bool = False
    margin: str = "20mm"
    print_background: bool = True

    def __post_init__(self) -> None:
        if self.page_size not in PAGE_SIZES:
            raise ValueError(
                f"page_size must be one of {', '.join(PAGE_SIZES)}, got {self.page_size!r}"
            )
        try:
            check_margin(self.margin, self.page_size)
        except ValueError as err:
            raise ValueError(f"margin {err}") from err


@dataclass(frozen=True)
class PdfResult:
    """Page count and file size in bytes of a written PDF, and the engine that wrote it."""

    page_count: int
    size_bytes: int
    engine_version: str


class DataURLFetcher(URLFetcher):  # type: ignore[misc]
    """WeasyPrint URL fetcher that decodes ``data:`` URLs and rejects all others.

    A rejected URL raises ValueError before any I/O, and WeasyPrint then skips the
    image, stylesheet or font that used it. ``rejected_schemes`` counts the
    rejections by scheme.
    """

    def __init__(self) -> None:
        super().__init__(allow_redirects=False)
        self.rejected_schemes: Counter[str] = Counter()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        scheme = _url_scheme(url)
        if scheme == "data":
            # urllib's DataHandler decodes the URL in memory.
            return super().fetch(url, headers)

        self.rejected_schemes[scheme] += 1
        if self.rejected_schemes[scheme] == 1:
            # The URL is not logged here, because it is user input that can contain
            # credentials or personal data.
            logger.info(
                "Rejected a URL with the %s scheme in the HTML because only data: URLs "
                "are loaded. The resource is left out of the PDF, and further %s URLs "
                "in this document are not logged.",
                scheme,
                scheme,
            )
        raise ValueError(f"{scheme} URLs are not loaded because only data: URLs are allowed")


def render_html_to_pdf(html: str, dest: Path, options: PdfOptions, *, max_pages: int) -> PdfResult:
    """Render ``html`` and write it as a PDF to ``dest``.

    Only ``data:`` URLs are loaded. Images, stylesheets and fonts at any other URL are
    left out, and relative URLs are ignored because the document has no base URL.

    The whole document is laid out before the page count is checked, so the time
    and memory that layout takes are not limited here. Raises InputError with
    INPUT_TOO_LARGE when the document has more than ``max_pages`` pages, before
    anything is written, and ValueError when ``max_pages`` is below 1. Exceptions from
    WeasyPrint propagate unchanged. The PDF is written to a temporary file in
    ``dest``'s folder and renamed to ``dest`` only on success, so ``dest`` is left as
    it was on any error.
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")

    url_fetcher = DataURLFetcher()
    try:
        document = weasyprint.HTML(string=html, base_url=None, url_fetcher=url_fetcher).render(
            stylesheets=[weasyprint.CSS(string=_page_css(options), url_fetcher=url_fetcher)]
        )
    except RecursionError as err:
        # WeasyPrint lays out nested elements recursively; thousands of levels exhaust the stack.
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            "The HTML nests elements too deeply to lay out (thousands of levels). "
            "Flatten the document's structure.",
        ) from err

    page_count = len(document.pages)
    if page_count > max_pages:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The HTML renders to {page_count} pages, which exceeds the limit of "
            f"{max_pages} pages. Shorten the document or split it into several jobs.",
        )

    size_bytes = write_atomically(dest, lambda file: document.write_pdf(target=file))
    return PdfResult(
        page_count=page_count,
        size_bytes=size_bytes,
        engine_version=f"WeasyPrint {weasyprint.__version__}",
    )


def html_from_json(payload: dict[str, Any]) -> str:
    """Build an HTML document from an input.json object with ``html``, ``css`` and ``title``.

    ``html`` is required and is either a body fragment or a full document. The optional
    ``css`` string goes into a ``<style>`` element and the optional ``title`` string,
    escaped, into a ``<title>`` element. Both go into the document's head when it has
    one, and into a new head otherwise. Other keys are ignored. Raises InputError with
    INPUT_CORRUPT when a key has the wrong type or ``html`` is missing.
    """
    if not isinstance(payload, dict):
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"input.json must contain a JSON object, got {_json_type_name(payload)}. "
            'Send an object such as {"html": "<p>Hello</p>"}.',
        )

    if "html" not in payload:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            "input.json must have an 'html' string, but the key is missing. "
            "Set 'html' to an HTML body fragment or a full HTML document.",
        )
    body = payload["html"]
    if not isinstance(body, str):
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"input.json must have an 'html' string, got {_json_type_name(body)}. "
            "Set 'html' to an HTML body fragment or a full HTML document.",
        )
    css = _optional_string(payload, "css", "CSS rules for the document")
    title = _optional_string(payload, "title", "the document title as plain text")

    title_element = f"<title>{html_escaping.escape(title)}</title>\n" if title else ""
    # A "</" inside a style element would end it early. The CSS escape "\/" is read
    # as "/", so the rules keep their meaning.
    escaped_css = css.replace("</", "<\\/")
    style_element = f"<style>\n{escaped_css}\n</style>\n" if css else ""
    return _insert_into_head(body, title_element, style_element)


def _page_css(options: PdfOptions) -> str:
    orientation = " landscape" if options.landscape else ""
    css = f"@page {{ size: {options.page_size}{orientation}; margin: {options.margin} }}\n"
    if not options.print_background:
        css += _NO_BACKGROUND_CSS
    return css


def _url_scheme(url: str) -> str:
    """Return the lower-case scheme of ``url``, shortened for logs, or "relative"."""
    match = _URL_SCHEME_PATTERN.match(url)
    if match is None:
        return "relative"
    return match.group(1).lower()[:_MAX_LOGGED_SCHEME_LENGTH]


def _optional_string(payload: dict[str, Any], key: str, description: str) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"input.json key '{key}' must be a string with {description}, "
            f"got {_json_type_name(value)}. Send a string or leave the key out.",
        )
    return value


def _json_type_name(value: object) -> str:
    """Return the JSON name of a decoded JSON value's type, such as "an array" for a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _insert_into_head(document: str, title_element: str, style_element: str) -> str:
    """Put the title and style elements into the document's head, adding one if needed.

    The title goes first in the head because WeasyPrint takes the first title as the
    PDF title. The style goes last, so its rules follow the document's own head
    stylesheets in the cascade. A fragment without an html or head tag is wrapped in
    a complete document.
    """
    # NOTE: the tags are found with regular expressions, so a "<head>" or "<html>"
    # inside a comment or script before the real tag is taken as the real one.
    head_start = _HEAD_START_TAG.search(document)
    if head_start is not None:
        if not title_element and not style_element:
            return document
        head_end = _HEAD_END_TAG.search(document, head_start.end())
        style_position = head_end.start() if head_end is not None else head_start.end()
        return (
            document[: head_start.end()]
            + "\n"
            + title_element
            + document[head_start.end() : style_position]
            + style_element
            + document[style_position:]
        )

    head = f"<head>\n{title_element}{style_element}</head>\n"
    html_start = _HTML_START_TAG.search(document)
    if html_start is not None:
        return document[: html_start.end()] + "\n" + head + document[html_start.end() :]

    return f"<!DOCTYPE html>\n<html>\n{head}<body>\n{document}\n</body>\n</html>\n"
