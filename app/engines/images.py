"""Check and compress uploaded PNG, JPEG and WebP images with Pillow.

The functions are pure and blocking. Workers run them in a child process through
``app.engines.isolated`` so that a canceled conversion can be killed.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from PIL import Image, ImageCms, ImageFile, ImageOps

from app.engines.files import write_atomically
from app.engines.sniff import SNIFF_BYTES, sniff_content_type
from app.errors import InputError, JobErrorCode

logger = logging.getLogger(__name__)

IMAGE_INPUT_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})

_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}

# Exceptions that Pillow raises while it parses or decodes a damaged file.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)

_WHITE_RGB = (255, 255, 255)
_WHITE_GRAY = 255

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

# Data colour space signatures, stored at bytes 16-19 of an ICC profile header.
_ICC_COLOR_SPACE_FOR_MODE = {"RGB": b"RGB ", "L": b"GRAY"}


@dataclass(frozen=True)
class ImageFacts:
    """Type and size of an input image, read from its header without decoding pixels."""

    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class CompressResult:
    """Pixel size and file size in bytes of a written JPEG."""

    width: int
    height: int
    size_bytes: int


def inspect_image(path: Path, declared_type: str, max_pixels: int) -> ImageFacts:
    """Check that the file is the image type it was declared as and within the pixel limit.

    Only the file header is read. Raises InputError with INPUT_TYPE_MISMATCH when the
    bytes are not a PNG, JPEG or WebP image of ``declared_type``, INPUT_CORRUPT when
    Pillow cannot parse the header, and INPUT_TOO_LARGE when width * height exceeds
    ``max_pixels``.
    """
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        content_type = _check_declared_type(sniff_content_type(head), declared_type)
        with _open_header(file, content_type, max_pixels) as image:
            width, height = image.size
    return ImageFacts(content_type=content_type, width=width, height=height)


def compress_image(
    src: Path,
    dest: Path,
    *,
    quality: int,
    max_width: int | None,
    max_height: int | None,
    max_pixels: int,
) -> CompressResult:
    """Write ``src`` as an optimized JPEG to ``dest``, upright and on a white background.

    The EXIF orientation is applied and no EXIF data is written, so the output carries
    no orientation tag. Transparent pixels become white. 16-bit and float images are
    scaled to 8 bits, and 1-bit and grayscale images stay grayscale. An ICC profile is
    kept when it matches the output colour space, and CMYK images are converted to
    sRGB through their embedded profile when they have one. With ``max_width`` or
    ``max_height`` the image is downscaled to fit inside them and is never upscaled.

    The JPEG is written to a temporary file in ``dest``'s folder, with mode 0600 from
    ``tempfile.mkstemp``, and renamed to ``dest`` only on success. Raises InputError
    for input that is not a PNG, JPEG or WebP image, is damaged or truncated, or exceeds
    ``max_pixels``. Other exceptions propagate unchanged.
    """
    _check_compress_arguments(quality, max_width, max_height)
    # WeasyPrint turns this process-wide Pillow flag on when it is imported (seen with 70.0),
    # and with it a truncated image decodes with gray filler instead of failing. Conversions run
    # in worker threads or engine processes that never render HTML, so turning it off is safe.
    ImageFile.LOAD_TRUNCATED_IMAGES = False

    with src.open("rb") as file:
        content_type = sniff_content_type(file.read(SNIFF_BYTES))
        if content_type not in IMAGE_INPUT_TYPES:
            raise InputError(
                JobErrorCode.INPUT_TYPE_MISMATCH,
                f"The file is not a PNG, JPEG or WebP image "
                f"(detected: {_describe_detected(content_type)}). "
                "Upload a PNG, JPEG or WebP image.",
            )
        with _open_header(file, content_type, max_pixels) as source:
            icc_profile = source.info.get("icc_profile")
            upright = _decode_upright(source)

    output, output_icc_profile = _to_jpeg_mode(upright, icc_profile)
    output = _fit_inside(output, max_width, max_height)
    size_bytes = write_atomically(
        dest,
        lambda file: output.save(
            file, format="JPEG", quality=quality, optimize=True, icc_profile=output_icc_profile
        ),
    )
    return CompressResult(width=output.width, height=output.height, size_bytes=size_bytes)


def _check_declared_type(detected_type: str | None, declared_type: str) -> str:
    if detected_type != declared_type:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file was declared as {declared_type} but its bytes are not "
            f"{declared_type} (detected: {_describe_detected(detected_type)}). "
            "Upload a PNG, JPEG or WebP image, or declare its real type.",
        )
    if detected_type not in IMAGE_INPUT_TYPES:
        raise InputError(
            JobErrorCode.INPUT_TYPE_MISMATCH,
            f"The file is {detected_type}, which cannot be compressed as an image. "
            "Upload a PNG, JPEG or WebP image.",
        )
    return detected_type


def _describe_detected(content_type: str | None) -> str:
    return content_type if content_type is not None else "text or unknown data"


def _check_compress_arguments(quality: int, max_width: int | None, max_height: int | None) -> None:
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    for name, value in (("max_width", max_width), ("max_height", max_height)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1 or None, got {value}")


def _open_header(file: BinaryIO, content_type: str, max_pixels: int) -> ImageFile.ImageFile:
    """Open the image lazily, reading only its header, and enforce the pixel limit.

    Only the Pillow plugin for the sniffed ``content_type`` is tried. The caller must
    close both the returned image and ``file``, because closing the image leaves
    ``file`` open.
    """
    try:
        image = Image.open(file, formats=[_PILLOW_FORMATS[content_type]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow checks its own limit, Image.MAX_IMAGE_PIXELS, inside Image.open. It
        # raises the warning class only when a warnings filter turns it into an error.
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The image declares {_declared_pixels(exc)} pixels; the limit is {max_pixels:,}. "
            "Upload a smaller image.",
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"The {content_type} header could not be read ({exc}). "
            "The file is truncated or damaged; upload the complete file again.",
        ) from exc

    try:
        _check_pixel_limit(image.width, image.height, max_pixels)
    except InputError:
        image.close()
        raise
    return image


def _declared_pixels(error: Exception) -> str:
    """Return the pixel count from Pillow's decompression-bomb message, or "too many"."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found.group(1)):,}" if found else "too many"


def _check_pixel_limit(width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The image is {width}x{height} pixels ({pixels:,} pixels), which exceeds the "
            f"limit of {max_pixels:,} pixels. Upload a smaller image.",
        )


def _decode_upright(source: ImageFile.ImageFile) -> Image.Image:
    """Decode all pixels and return an upright copy, rotated by the EXIF orientation tag."""
    try:
        source.load()
        return ImageOps.exif_transpose(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The image declares {_declared_pixels(exc)} pixels, too many to decode safely. "
            "Upload a smaller image.",
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"The image could not be decoded ({exc}). The file is truncated or damaged; "
            "upload the complete file again.",
        ) from exc


def _to_jpeg_mode(
    image: Image.Image, icc_profile: bytes | None
) -> tuple[Image.Image, bytes | None]:
    """Convert the image to mode RGB or L, flattening transparency onto white.

    Returns the converted image and the ICC profile to embed, which is None when the
    source profile does not describe the output colour space.
    """
    has_transparency = image.mode in _ALPHA_MODES or "transparency" in image.info

    if image.mode in _HIGH_DEPTH_MODES:
        gray = _scale_to_8bit(image)
        if "transparency" in image.info:
            # Converting to LA maps the transparent sample value to alpha 0. Its gray
            # channel is clipped to 8 bits, so only the alpha channel is used.
            alpha = image.convert("LA").getchannel("A")
            gray = _paste_on_white(gray, alpha)
        return gray, _matching_icc_profile(icc_profile, "L")

    if image.mode == "CMYK":
        return _cmyk_to_rgb(image, icc_profile)

    if image.mode in ("1", "L", "LA", "La"):
        if not has_transparency:
            return image.convert("L"), _matching_icc_profile(icc_profile, "L")
        gray_alpha = image.convert("LA")
        flattened = _paste_on_white(gray_alpha.getchannel("L"), gray_alpha.getchannel("A"))
        return flattened, _matching_icc_profile(icc_profile, "L")

    if not has_transparency:
        return image.convert("RGB"), _matching_icc_profile(icc_profile, "RGB")

    # RGBA, RGBa, PA, and P or RGB with a transparent colour or palette entries.
    rgba = image.convert("RGBA")
    flattened = _paste_on_white(rgba.convert("RGB"), rgba.getchannel("A"))
    return flattened, _matching_icc_profile(icc_profile, "RGB")


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit integer or float image linearly to mode L.

    16-bit modes map 0..65535 to 0..255. Mode I uses the same range when all values fit
    in it, as 16-bit samples widened to mode I do. Other mode I images are stretched
    from their minimum to their maximum. Mode F maps 0..1 when all values
    fit in it, and min..max otherwise.
    """
    floats = image.convert("F")
    # A single-band image returns one (min, max) pair.
    low, high = cast(tuple[float, float], floats.getextrema())

    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    elif image.mode == "I" and low >= 0 and high <= 65535:
        low, high = 0.0, 65535.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0

    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        # A constant image, or one with NaN or infinite samples, has no range to stretch.
        return Image.new("L", image.size, 0 if high <= 0 else _WHITE_GRAY)

    scale = 255.0 / (high - low)
    # The +0.5 rounds, because Pillow truncates when it converts F to L.
    offset = 0.5 - low * scale
    return floats.point(lambda value: value * scale + offset).convert("L")


def _paste_on_white(color: Image.Image, alpha: Image.Image) -> Image.Image:
    white = _WHITE_RGB if color.mode == "RGB" else _WHITE_GRAY
    background = Image.new(color.mode, color.size, white)
    background.paste(color, mask=alpha)
    return background


def _cmyk_to_rgb(image: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, None]:
    """Convert CMYK to RGB, through the embedded CMYK profile into sRGB when there is one."""
    if icc_profile is not None and _icc_color_space(icc_profile) == b"CMYK":
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            srgb_profile = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(
                image, source_profile, srgb_profile, outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            logger.warning("Embedded CMYK ICC profile is invalid, converting without it: %s", exc)
        else:
            if converted is not None:
                return converted, None
    return image.convert("RGB"), None


def _icc_color_space(icc_profile: bytes) -> bytes:
    return icc_profile[16:20]


def _matching_icc_profile(icc_profile: bytes | None, mode: str) -> bytes | None:
    if icc_profile is None or _icc_color_space(icc_profile) != _ICC_COLOR_SPACE_FOR_MODE[mode]:
        return None
    return icc_profile


def _fit_inside(image: Image.Image, max_width: int | None, max_height: int | None) -> Image.Image:
    """Downscale the image to fit inside the given bounds, keeping its aspect ratio."""
    scale = 1.0
    if max_width is not None:
        scale = min(scale, max_width / image.width)
    if max_height is not None:
        scale = min(scale, max_height / image.height)
    if scale >= 1.0:
        return image

    width = min(image.width, max(1, round(image.width * scale)))
    height = min(image.height, max(1, round(image.height * scale)))
    if max_width is not None:
        width = min(width, max_width)
    if max_height is not None:
        height = min(height, max_height)
    return image.resize((width, height), Image.Resampling.LANCZOS)
