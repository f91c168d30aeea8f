"""Image files generated for tests."""

from __future__ import annotations

import functools
import io
import random

from PIL import Image


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG that does not compress well, so that decoding and encoding take measurable time."""
    rng = random.Random(seed)
    tile = Image.frombytes("RGB", (256, 256), rng.randbytes(256 * 256 * 3))
    image = Image.new("RGB", (width, height))
    for x in range(0, width, 256):
        for y in range(0, height, 256):
            image.paste(tile, (x, y))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def gradient_png(width: int = 64, height: int = 48) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255) // width, (y * 255) // height, 128)
            for y in range(height)
            for x in range(width)
        ]
    )
    return encode(image, "PNG")


@functools.lru_cache(maxsize=1)
def slow_webp() -> bytes:
    """A 49-megapixel lossless WebP: converting it takes seconds, so a cancel lands mid-run.

    Pass ``maxWidth`` below 7000 as well; the resize adds about a second.
    """
    buffer = io.BytesIO()
    Image.open(io.BytesIO(noisy_png(7000, 7000))).save(
        buffer, "WEBP", lossless=True, quality=0, method=0
    )
    return buffer.getvalue()
