"""Tests for the Pillow image engine and content sniffing, on images generated per test."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path
from typing import cast

import pytest
from PIL import Image, ImageCms, ImageFile

from app.engines.images import (
    IMAGE_INPUT_TYPES,
    CompressResult,
    ImageFacts,
    compress_image,
    inspect_image,
)
from app.engines.sniff import sniff_content_type, sniff_file
from app.errors import InputError, JobErrorCode

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
MAX_PIXELS = 50_000_000
ORIENTATION_TAG = 0x0112


def save_image(path: Path, image: Image.Image, image_format: str, **params: object) -> Path:
    image.save(path, format=image_format, **params)
    return path


def compress(src: Path, dest: Path, **overrides: object) -> CompressResult:
    arguments: dict[str, object] = {
        "quality": 85,
        "max_width": None,
        "max_height": None,
        "max_pixels": MAX_PIXELS,
    }
    arguments.update(overrides)
    return compress_image(src, dest, **arguments)  # type: ignore[arg-type]


def open_jpeg(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.format == "JPEG"
    return image


def assert_close(actual: object, expected: tuple[int, ...] | int, tolerance: int = 12) -> None:
    if isinstance(expected, int):
        assert isinstance(actual, int)
        assert abs(actual - expected) <= tolerance, (
            f"{actual} is not within {tolerance} of {expected}"
        )
        return
    assert isinstance(actual, tuple)
    assert len(actual) == len(expected)
    for channel, expected_channel in zip(actual, expected, strict=True):
        assert abs(channel - expected_channel) <= tolerance, (
            f"{actual} is not within {tolerance} of {expected}"
        )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_png_header_only(path: Path, width: int, height: int) -> Path:
    """Write an 8-bit grayscale PNG whose header declares width x height but whose IDAT is tiny."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


def noise_image(mode: str, size: tuple[int, int]) -> Image.Image:
    bands = len(mode)
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * bands))


def two_halves(mode: str, size: tuple[int, int], left: object, right: object) -> Image.Image:
    image = Image.new(mode, size, right)  # type: ignore[arg-type]
    image.paste(left, (0, 0, size[0] // 2, size[1]))  # type: ignore[arg-type]
    return image


def leftover_files(folder: Path, keep: set[str]) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name not in keep)


# Sniffing


def encoded(image_format: str, mode: str = "RGB", **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (8, 8), (10, 20, 30) if mode == "RGB" else 0).save(
        buffer, format=image_format, **params
    )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (encoded("PNG"), "image/png"),
        (encoded("JPEG"), "image/jpeg"),
        (encoded("WEBP"), "image/webp"),
        (encoded("GIF", mode="P"), "image/gif"),
        (encoded("TIFF"), "image/tiff"),
        (encoded("TIFF", tiffinfo={}, compression="raw"), "image/tiff"),
        (encoded("BMP"), "image/bmp"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 56, "application/zip"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"<!DOCTYPE html>\n<html><head>", "text/html"),
        (b"\xef\xbb\xbf  \n\t<HTML lang=en>", "text/html"),
        (b"<html>", "text/html"),
        (b"<html", "text/html"),
        (b"<htmlx>", None),
        (b"BMW sells cars, not bitmaps. " * 3, None),
        (b"plain text, not an image", None),
        (b"", None),
        (b"\x00" * 64, None),
    ],
)
def test_sniff_content_type_cases(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


def test_sniff_file_reads_head(tmp_path: Path) -> None:
    path = save_image(tmp_path / "photo.bin", Image.new("RGB", (4, 4)), "PNG")
    assert sniff_file(path) == "image/png"


def test_sniff_file_html_after_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_bytes(b"\n" * 200 + b"<!doctype html><title>x</title>")
    assert sniff_file(path) == "text/html"


# inspect_image


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_inspect_image_reports_facts(tmp_path: Path, image_format: str, content_type: str) -> None:
    path = save_image(tmp_path / "input", Image.new("RGB", (30, 17), RED), image_format)

    facts = inspect_image(path, content_type, MAX_PIXELS)

    assert facts == ImageFacts(content_type=content_type, width=30, height=17)
    assert content_type in IMAGE_INPUT_TYPES


def test_inspect_text_declared_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("These are meeting notes, not a picture.\n" * 4)

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", MAX_PIXELS)

    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert "declared as image/png" in caught.value.message
    assert "text or unknown data" in caught.value.message


def test_inspect_jpeg_declared_png(tmp_path: Path) -> None:
    path = save_image(tmp_path / "photo.png", Image.new("RGB", (8, 8), RED), "JPEG")

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", MAX_PIXELS)

    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert "declared as image/png" in caught.value.message
    assert "detected: image/jpeg" in caught.value.message


def test_inspect_gif_declared_gif(tmp_path: Path) -> None:
    path = save_image(tmp_path / "anim.gif", Image.new("P", (8, 8)), "GIF")

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/gif", MAX_PIXELS)

    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert "image/gif" in caught.value.message


def test_inspect_corrupt_header(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\xff" * 40)

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", MAX_PIXELS)

    assert caught.value.code is JobErrorCode.INPUT_CORRUPT


def test_inspect_decompression_bomb_fast(tmp_path: Path) -> None:
    path = write_png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert path.stat().st_size < 200

    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", MAX_PIXELS)
    elapsed = time.perf_counter() - started

    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert elapsed < 1.0


def test_inspect_own_pixel_limit(tmp_path: Path) -> None:
    # 9000 x 9000 is below Pillow's own limit, so only the engine's check can reject it.
    path = write_png_header_only(tmp_path / "large.png", 9000, 9000)
    assert 9000 * 9000 < (Image.MAX_IMAGE_PIXELS or 0)

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", MAX_PIXELS)

    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "9000x9000" in caught.value.message
    assert "50,000,000" in caught.value.message


def test_inspect_small_limit(tmp_path: Path) -> None:
    path = save_image(tmp_path / "small.png", Image.new("RGB", (20, 20)), "PNG")

    with pytest.raises(InputError) as caught:
        inspect_image(path, "image/png", 399)

    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert inspect_image(path, "image/png", 400).width == 20


# compress_image: formats and sizes


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_compress_formats_to_jpeg(tmp_path: Path, image_format: str) -> None:
    src = save_image(tmp_path / "input", two_halves("RGB", (64, 48), RED, BLUE), image_format)
    dest = tmp_path / "output.jpg"

    result = compress(src, dest)

    output = open_jpeg(dest)
    assert output.size == (64, 48)
    assert output.mode == "RGB"
    assert result == CompressResult(width=64, height=48, size_bytes=dest.stat().st_size)
    assert_close(output.getpixel((5, 24)), RED)
    assert_close(output.getpixel((58, 24)), BLUE)
    assert leftover_files(tmp_path, {"input", "output.jpg"}) == []


def test_compress_quality_changes_size(tmp_path: Path) -> None:
    src = save_image(tmp_path / "noise.png", noise_image("RGB", (128, 128)), "PNG")

    low = compress(src, tmp_path / "low.jpg", quality=20)
    high = compress(src, tmp_path / "high.jpg", quality=95)

    assert low.size_bytes < high.size_bytes


@pytest.mark.parametrize(
    ("max_width", "max_height", "expected_size"),
    [
        (100, None, (100, 50)),
        (None, 50, (100, 50)),
        (100, 100, (100, 50)),
        (300, 30, (60, 30)),
        (1000, 1000, (400, 200)),
        (400, 200, (400, 200)),
        (1000, None, (400, 200)),
        (1, None, (1, 1)),
    ],
)
def test_compress_resize_fits_inside(
    tmp_path: Path,
    max_width: int | None,
    max_height: int | None,
    expected_size: tuple[int, int],
) -> None:
    src = save_image(tmp_path / "wide.png", Image.new("RGB", (400, 200), RED), "PNG")
    dest = tmp_path / "out.jpg"

    result = compress(src, dest, max_width=max_width, max_height=max_height)

    assert open_jpeg(dest).size == expected_size
    assert (result.width, result.height) == expected_size


def test_compress_rejects_bad_quality(tmp_path: Path) -> None:
    src = save_image(tmp_path / "in.png", Image.new("RGB", (4, 4)), "PNG")

    with pytest.raises(ValueError, match="quality"):
        compress(src, tmp_path / "out.jpg", quality=0)

    assert not (tmp_path / "out.jpg").exists()


# compress_image: transparency


def test_compress_rgba_transparent_is_white(tmp_path: Path) -> None:
    # The transparent half has black color values, which must not show through.
    image = two_halves("RGBA", (40, 20), (0, 0, 0, 0), (*BLUE, 255))
    src = save_image(tmp_path / "alpha.png", image, "PNG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "RGB"
    assert_close(output.getpixel((5, 10)), WHITE, tolerance=3)
    assert_close(output.getpixel((35, 10)), BLUE)


def test_compress_rgba_half_alpha_blends(tmp_path: Path) -> None:
    image = Image.new("RGBA", (16, 16), (0, 0, 0, 128))
    src = save_image(tmp_path / "half.png", image, "PNG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    assert_close(open_jpeg(dest).getpixel((8, 8)), (127, 127, 127), tolerance=4)


def test_compress_webp_alpha_is_white(tmp_path: Path) -> None:
    image = two_halves("RGBA", (40, 20), (0, 0, 0, 0), (*RED, 255))
    src = save_image(tmp_path / "alpha.webp", image, "WEBP", lossless=True)
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert_close(output.getpixel((5, 10)), WHITE, tolerance=3)
    assert_close(output.getpixel((35, 10)), RED)


def test_compress_palette_transparency_is_white(tmp_path: Path) -> None:
    image = Image.new("P", (40, 20), 1)
    image.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, 20, 20))
    src = save_image(tmp_path / "palette.png", image, "PNG", transparency=0)
    dest = tmp_path / "out.jpg"
    with Image.open(src) as reopened:
        assert reopened.mode == "P"
        assert "transparency" in reopened.info

    compress(src, dest)

    output = open_jpeg(dest)
    assert_close(output.getpixel((5, 10)), WHITE, tolerance=3)
    assert_close(output.getpixel((35, 10)), RED)


def test_compress_la_transparent_is_white(tmp_path: Path) -> None:
    image = two_halves("LA", (40, 20), (0, 0), (0, 255))
    src = save_image(tmp_path / "gray_alpha.png", image, "PNG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    assert_close(output.getpixel((5, 10)), 255, tolerance=3)
    assert_close(output.getpixel((35, 10)), 0, tolerance=3)


def test_compress_gray_transparency_is_white(tmp_path: Path) -> None:
    image = two_halves("L", (40, 20), 0, 60)
    src = save_image(tmp_path / "gray_key.png", image, "PNG", transparency=0)
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    assert_close(output.getpixel((5, 10)), 255, tolerance=3)
    assert_close(output.getpixel((35, 10)), 60, tolerance=3)


def test_compress_rgb_transparency_is_white(tmp_path: Path) -> None:
    image = two_halves("RGB", (40, 20), (0, 0, 0), BLUE)
    src = save_image(tmp_path / "rgb_key.png", image, "PNG", transparency=(0, 0, 0))
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert_close(output.getpixel((5, 10)), WHITE, tolerance=3)
    assert_close(output.getpixel((35, 10)), BLUE)


# compress_image: modes and colour


def test_compress_16bit_gray_scaled(tmp_path: Path) -> None:
    image = Image.new("I;16", (256, 8))
    image.putdata([x * 257 for x in range(256)] * 8)
    src = save_image(tmp_path / "deep.png", image, "PNG")
    dest = tmp_path / "out.jpg"
    with Image.open(src) as reopened:
        assert reopened.mode in ("I;16", "I")

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    low, high = cast(tuple[int, int], output.getextrema())
    assert low <= 5
    assert high >= 250
    assert_close(output.getpixel((128, 4)), 128, tolerance=6)
    assert_close(output.getpixel((64, 4)), 64, tolerance=6)


def test_compress_16bit_gray_transparency(tmp_path: Path) -> None:
    image = Image.new("I;16", (40, 20), 40000)
    image.paste(0, (0, 0, 20, 20))
    src = save_image(tmp_path / "deep_key.png", image, "PNG", transparency=0)
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert_close(output.getpixel((5, 10)), 255, tolerance=3)
    assert_close(output.getpixel((35, 10)), round(40000 / 257), tolerance=4)


def test_compress_one_bit_stays_gray(tmp_path: Path) -> None:
    image = two_halves("1", (40, 20), 0, 1)
    src = save_image(tmp_path / "bilevel.png", image, "PNG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    assert_close(output.getpixel((5, 10)), 0, tolerance=6)
    assert_close(output.getpixel((35, 10)), 255, tolerance=6)


def test_compress_gray_jpeg_stays_gray(tmp_path: Path) -> None:
    src = save_image(tmp_path / "gray.jpg", Image.new("L", (32, 32), 100), "JPEG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    assert_close(output.getpixel((16, 16)), 100, tolerance=3)


def test_compress_cmyk_jpeg_to_rgb(tmp_path: Path) -> None:
    # Pure magenta plus yellow is red in naive CMYK.
    src = save_image(tmp_path / "print.jpg", Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "RGB"
    assert_close(output.getpixel((16, 16)), RED, tolerance=16)
    assert "icc_profile" not in output.info


def test_compress_keeps_rgb_icc_profile(tmp_path: Path) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = save_image(
        tmp_path / "tagged.png", Image.new("RGB", (16, 16), RED), "PNG", icc_profile=profile
    )
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    assert open_jpeg(dest).info.get("icc_profile") == profile


def test_compress_drops_mismatched_icc_profile(tmp_path: Path) -> None:
    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = save_image(
        tmp_path / "gray.png", Image.new("L", (16, 16), 90), "PNG", icc_profile=rgb_profile
    )
    dest = tmp_path / "out.jpg"

    compress(src, dest)

    output = open_jpeg(dest)
    assert output.mode == "L"
    assert "icc_profile" not in output.info


def test_compress_exif_orientation_applied(tmp_path: Path) -> None:
    # Orientation 6 means the stored pixels must be rotated 90 degrees clockwise for
    # display, which moves the stored left half to the top.
    image = two_halves("RGB", (40, 20), RED, BLUE)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    src = save_image(tmp_path / "phone.jpg", image, "JPEG", exif=exif.tobytes(), quality=95)
    dest = tmp_path / "out.jpg"
    with Image.open(src) as reopened:
        assert reopened.getexif().get(ORIENTATION_TAG) == 6

    result = compress(src, dest)

    output = open_jpeg(dest)
    assert output.size == (20, 40)
    assert (result.width, result.height) == (20, 40)
    assert output.getexif().get(ORIENTATION_TAG) is None
    assert_close(output.getpixel((10, 5)), RED, tolerance=20)
    assert_close(output.getpixel((10, 35)), BLUE, tolerance=20)


def test_compress_resize_after_orientation(tmp_path: Path) -> None:
    image = Image.new("RGB", (400, 200), RED)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    src = save_image(tmp_path / "phone.jpg", image, "JPEG", exif=exif.tobytes())
    dest = tmp_path / "out.jpg"

    compress(src, dest, max_width=100)

    assert open_jpeg(dest).size == (100, 200)


# compress_image: rejected input


def test_compress_decompression_bomb_fast(tmp_path: Path) -> None:
    src = write_png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    dest = tmp_path / "out.jpg"

    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        compress(src, dest)
    elapsed = time.perf_counter() - started

    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert elapsed < 1.0
    assert leftover_files(tmp_path, {"bomb.png"}) == []


def test_compress_own_pixel_limit(tmp_path: Path) -> None:
    src = write_png_header_only(tmp_path / "large.png", 9000, 9000)
    dest = tmp_path / "out.jpg"

    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        compress(src, dest)
    elapsed = time.perf_counter() - started

    assert caught.value.code is JobErrorCode.INPUT_TOO_LARGE
    assert "9000x9000" in caught.value.message
    assert elapsed < 1.0
    assert leftover_files(tmp_path, {"large.png"}) == []


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_compress_truncated_is_corrupt(tmp_path: Path, image_format: str) -> None:
    full = save_image(tmp_path / "full", noise_image("RGB", (256, 256)), image_format, quality=90)
    data = full.read_bytes()
    src = tmp_path / "half"
    src.write_bytes(data[: len(data) // 2])
    full.unlink()
    dest = tmp_path / "out.jpg"

    with pytest.raises(InputError) as caught:
        compress(src, dest)

    assert caught.value.code is JobErrorCode.INPUT_CORRUPT
    assert "truncated or damaged" in caught.value.message
    assert not dest.exists()
    assert leftover_files(tmp_path, {"half"}) == []
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_compress_text_is_type_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "notes.png"
    src.write_text("not an image\n" * 10)
    dest = tmp_path / "out.jpg"

    with pytest.raises(InputError) as caught:
        compress(src, dest)

    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH
    assert not dest.exists()


def test_truncated_rejected_after_weasyprint_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES; truncated input must still fail.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    full = save_image(tmp_path / "full.png", noise_image("RGB", (300, 200)), "PNG")
    src = tmp_path / "half.png"
    src.write_bytes(full.read_bytes()[: full.stat().st_size // 2])

    with pytest.raises(InputError) as caught:
        compress(src, tmp_path / "out.jpg")

    assert caught.value.code is JobErrorCode.INPUT_CORRUPT
    assert not (tmp_path / "out.jpg").exists()


def test_compress_failure_keeps_no_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = save_image(tmp_path / "in.png", Image.new("RGB", (16, 16), RED), "PNG")
    dest = tmp_path / "out.jpg"

    def fail_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        assert not isinstance(fp, (str, Path))
        fp.write(b"partial JPEG bytes")  # type: ignore[attr-defined]
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail_save)

    with pytest.raises(OSError, match="No space left"):
        compress(src, dest)

    assert not dest.exists()
    assert leftover_files(tmp_path, {"in.png"}) == []
