"""Page sizes and margins, checked without loading the HTML renderer.

The API validates options with these rules at create time; the engine checks them again.
"""

from __future__ import annotations

import re

# CSS named page sizes that PdfOptions.page_size accepts.
PAGE_SIZES = ("A4", "Letter", "Legal", "A3", "A5")

# Portrait width and height in points (1/72 in), from the CSS Paged Media size keywords.
_PAGE_SIZE_POINTS = {
    "A4": (210 * 72 / 25.4, 297 * 72 / 25.4),
    "Letter": (8.5 * 72, 11 * 72),
    "Legal": (8.5 * 72, 14 * 72),
    "A3": (297 * 72 / 25.4, 420 * 72 / 25.4),
    "A5": (148 * 72 / 25.4, 210 * 72 / 25.4),
}

# Points per unit of a CSS length. WeasyPrint resolves em and rem in @page against the
# page or root font size, which a document can change, so the em and rem values here
# are estimates that assume the CSS initial font size of 16px.
_POINTS_PER_UNIT = {
    "px": 0.75,
    "mm": 72 / 25.4,
    "cm": 72 / 2.54,
    "in": 72.0,
    "pt": 1.0,
    "pc": 12.0,
    "em": 12.0,
    "rem": 12.0,
}

# A non-negative CSS length with a unit, or a bare 0.
_MARGIN_PATTERN = re.compile(
    r"0|(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<unit>px|mm|cm|in|pt|pc|em|rem)"
)


def check_margin(margin: str, page_size: str) -> None:
    """Raise ValueError unless ``margin`` is a CSS length that leaves room on ``page_size``.

    The message does not name the option, so callers can prefix the name they use for it.
    """
    match = _MARGIN_PATTERN.fullmatch(margin)
    if match is None:
        raise ValueError(
            f"must be a CSS length such as 20mm, 1in or 0, with a unit of "
            f"px, mm, cm, in, pt, pc, em or rem, got {margin!r}"
        )
    if match.group("unit") is None:
        return

    margin_points = float(match.group("number")) * _POINTS_PER_UNIT[match.group("unit")]
    shorter_side = min(_PAGE_SIZE_POINTS[page_size])
    if 2 * margin_points >= shorter_side:
        raise ValueError(
            f"{margin} leaves no room for content on page size {page_size}, whose "
            f"shorter side is {shorter_side:.0f}pt. Use a margin below half of that."
        )
