"""Tests of the tool catalog and of job options validation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app import catalog
from app.catalog import (
    ENGINES_AVAILABLE,
    TOOLS,
    FieldError,
    ImageCompressOptions,
    InputKind,
    Tool,
    accepted_type,
    extension_matches,
    get_tool,
    list_tools,
    parse_page_range,
    validate_options,
)
from app.config import Lane

WORKER_SLUGS = [
    "html-to-pdf-api",
    "word-to-pdf",
    "slides-to-pdf",
    "spreadsheet-to-pdf",
    "pdf-to-images-zip",
    "pdf-to-text",
    "pdf-to-markdown",
    "pdf-to-docx",
    "image-compress-api",
    "trim-video",
    "compress-video",
    "video-to-gif",
    "mute-video",
]
BROWSER_SLUGS = ["json-formatter", "base64-encode", "color-picker"]

PUBLIC_KEYS = {
    "slug",
    "title",
    "description",
    "category",
    "browserOnly",
    "apiJobs",
    "apiJobsReason",
    "inputKinds",
    "acceptedTypes",
    "limits",
    "output",
    "retentionSeconds",
    "maxAttempts",
    "deadlineSeconds",
    "costUnits",
    "optionsSchema",
    "lane",
}
JOB_KEYS = ["limits", "output", "retentionSeconds", "maxAttempts", "deadlineSeconds", "lane"]
CAMEL_CASE_KEY = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def image_tool() -> Tool:
    tool = get_tool("image-compress-api")
    assert tool is not None
    return tool


def collect_keys(value: Any) -> list[str]:
    """Return every object key in a JSON value, at any depth."""
    if isinstance(value, dict):
        keys = list(value)
        for item in value.values():
            keys.extend(collect_keys(item))
        return keys
    if isinstance(value, list):
        return [key for item in value for key in collect_keys(item)]
    return []


# Catalog contents


def test_catalog_order_workers_then_browser() -> None:
    assert list(TOOLS) == WORKER_SLUGS + BROWSER_SLUGS
    assert [tool.slug for tool in list_tools()] == WORKER_SLUGS + BROWSER_SLUGS


@pytest.mark.parametrize("slug", WORKER_SLUGS)
def test_worker_tool_sets_every_field(slug: str) -> None:
    tool = get_tool(slug)
    assert tool is not None
    entry = tool.public()

    assert set(entry) == PUBLIC_KEYS
    for key in PUBLIC_KEYS - {"apiJobsReason"}:
        assert entry[key] is not None, key
    assert entry["browserOnly"] is False
    assert entry["lane"] in {lane.value for lane in Lane}
    assert entry["inputKinds"]
    assert entry["acceptedTypes"]
    assert entry["limits"]["maxBytes"] > 0
    assert entry["output"]["contentType"]
    assert entry["output"]["extension"].startswith(".")
    assert entry["retentionSeconds"] == 24 * 60 * 60
    assert 1 <= entry["maxAttempts"]["default"] <= entry["maxAttempts"]["max"]
    deadline = entry["deadlineSeconds"]
    assert deadline["min"] <= deadline["default"] <= deadline["max"]
    assert 1 <= entry["costUnits"] <= 5
    assert entry["optionsSchema"]["type"] == "object"
    assert entry["optionsSchema"]["additionalProperties"] is False
    assert tool.engine is not None


@pytest.mark.parametrize("slug", BROWSER_SLUGS)
def test_browser_tool_has_no_job_fields(slug: str) -> None:
    tool = get_tool(slug)
    assert tool is not None
    entry = tool.public()

    assert set(entry) == PUBLIC_KEYS
    assert entry["browserOnly"] is True
    assert entry["apiJobs"] is False
    assert "browser" in entry["apiJobsReason"]
    assert entry["costUnits"] == 0
    for key in JOB_KEYS:
        assert entry[key] is None, key
    assert tool.engine is None
    assert entry["optionsSchema"] == {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }


def test_only_tools_with_engines_accept_jobs() -> None:
    accepting = [tool.slug for tool in list_tools() if tool.api_jobs]
    # Every worker tool's engine is installed where the tests run.
    assert accepting == WORKER_SLUGS
    assert image_tool().api_jobs_reason is None

    for tool in list_tools():
        if tool.api_jobs:
            continue
        assert tool.api_jobs_reason, tool.slug


def test_missing_engine_reason_names_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "ffmpeg" in ENGINES_AVAILABLE
    monkeypatch.setattr(catalog, "ENGINES_AVAILABLE", frozenset({"pillow"}))
    trim = catalog._worker_tool(
        slug="trim-video",
        title="Trim video",
        description="Cut a video.",
        category="video",
        lane=Lane.MEDIA,
        engine="ffmpeg",
        input_kinds=catalog.FILE_INPUT,
        accepted_types=catalog.VIDEO_TYPES,
        limits=catalog.VIDEO_LIMITS,
        output=catalog.MP4_OUTPUT,
        deadline_seconds=catalog.VIDEO_DEADLINE,
        cost_units=3,
        options_model=None,
    )
    assert trim.api_jobs is False
    assert trim.api_jobs_reason == (
        "This tool's engine (FFmpeg) is not installed on the workers yet."
    )


def test_worker_lanes() -> None:
    expected = {
        "html-to-pdf-api": Lane.LIGHT,
        "word-to-pdf": Lane.DOCUMENTS,
        "slides-to-pdf": Lane.DOCUMENTS,
        "spreadsheet-to-pdf": Lane.DOCUMENTS,
        "pdf-to-images-zip": Lane.LIGHT,
        "pdf-to-text": Lane.LIGHT,
        "pdf-to-markdown": Lane.LIGHT,
        "pdf-to-docx": Lane.LIGHT,
        "image-compress-api": Lane.LIGHT,
        "trim-video": Lane.MEDIA,
        "compress-video": Lane.MEDIA,
        "video-to-gif": Lane.MEDIA,
        "mute-video": Lane.MEDIA,
    }
    lanes = {slug: TOOLS[slug].lane for slug in WORKER_SLUGS}
    assert lanes == expected


def test_html_to_pdf_takes_text_json_and_files() -> None:
    tool = TOOLS["html-to-pdf-api"]
    assert set(tool.input_kinds) == {InputKind.TEXT, InputKind.JSON, InputKind.FILE}


@pytest.mark.parametrize(
    ("slug", "extensions"),
    [
        ("word-to-pdf", {".doc", ".docx", ".odt", ".rtf"}),
        ("slides-to-pdf", {".ppt", ".pptx", ".odp"}),
        ("spreadsheet-to-pdf", {".xls", ".xlsx", ".ods", ".csv"}),
        ("trim-video", {".mp4", ".mov", ".webm"}),
        ("mute-video", {".mp4", ".mov", ".webm"}),
    ],
)
def test_document_and_video_extensions(slug: str, extensions: set[str]) -> None:
    tool = TOOLS[slug]
    listed = {extension for item in tool.accepted_types for extension in item.extensions}
    assert listed == extensions


def test_image_compress_entry() -> None:
    entry = image_tool().public()

    assert entry["acceptedTypes"] == [
        {"contentType": "image/png", "extensions": [".png"]},
        {"contentType": "image/jpeg", "extensions": [".jpg", ".jpeg"]},
        {"contentType": "image/webp", "extensions": [".webp"]},
    ]
    assert entry["limits"] == {
        "maxBytes": 50 * 1024 * 1024,
        "maxPixels": 50_000_000,
        "maxPages": None,
        "maxSeconds": None,
    }
    assert entry["output"] == {"contentType": "image/jpeg", "extension": ".jpg"}
    assert entry["retentionSeconds"] == 86_400
    assert entry["maxAttempts"] == {"default": 3, "max": 5}
    assert entry["deadlineSeconds"] == {"default": 120, "min": 5, "max": 600}
    assert entry["costUnits"] == 1
    assert entry["lane"] == "light"
    assert entry["inputKinds"] == ["file"]


def test_get_tool_unknown_slug() -> None:
    assert get_tool("no-such-tool") is None


# Public JSON


def test_image_options_schema() -> None:
    schema = image_tool().public()["optionsSchema"]

    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["quality", "maxWidth", "maxHeight"]
    quality = schema["properties"]["quality"]
    assert quality["type"] == "integer"
    assert quality["minimum"] == 1
    assert quality["maximum"] == 95
    assert quality["default"] == 82
    max_width = schema["properties"]["maxWidth"]
    assert max_width["default"] is None
    assert {"type": "integer", "minimum": 1, "maximum": 20_000} in max_width["anyOf"]


@pytest.mark.parametrize("slug", WORKER_SLUGS + BROWSER_SLUGS)
def test_public_entry_json_camel_case(slug: str) -> None:
    entry = TOOLS[slug].public()

    encoded = json.dumps(entry)
    assert json.loads(encoded) == entry
    bad_keys = [key for key in collect_keys(entry) if not CAMEL_CASE_KEY.match(key)]
    assert bad_keys == []
    assert "engine" not in entry
    assert "optionsModel" not in entry


def test_public_entry_is_fresh_copy() -> None:
    mute = TOOLS["mute-video"]
    first = mute.public()
    first["optionsSchema"]["properties"]["injected"] = {}
    assert mute.public()["optionsSchema"]["properties"] == {}


# Content types and extensions


def test_accepted_type_ignores_parameters_and_case() -> None:
    tool = TOOLS["spreadsheet-to-pdf"]
    found = accepted_type(tool, "Text/CSV; charset=utf-8")
    assert found is not None
    assert found.content_type == "text/csv"
    assert accepted_type(tool, "application/pdf") is None


@pytest.mark.parametrize(
    ("content_type", "file_name", "expected"),
    [
        ("image/jpeg", "photo.jpg", True),
        ("image/jpeg", "photo.JPEG", True),
        ("image/png", "dir/sub/photo.png", True),
        ("image/png", "C:\\Users\\me\\photo.png", True),
        ("image/png", "photo.jpg", False),
        ("image/gif", "photo.gif", False),
        ("image/png", "photo", False),
        ("image/png", ".png", False),
    ],
)
def test_extension_matches(content_type: str, file_name: str, expected: bool) -> None:
    assert extension_matches(image_tool(), content_type, file_name) is expected


# Options validation


def test_options_empty_gives_defaults() -> None:
    empty_options: list[dict[str, Any] | None] = [{}, None]
    for options in empty_options:
        model, errors = validate_options(image_tool(), options)
        assert errors == []
        assert isinstance(model, ImageCompressOptions)
        assert model.quality == 82
        assert model.max_width is None
        assert model.max_height is None


def test_options_valid_values() -> None:
    model, errors = validate_options(image_tool(), {"quality": 50, "maxWidth": 100})

    assert errors == []
    assert isinstance(model, ImageCompressOptions)
    assert model.quality == 50
    assert model.max_width == 100
    assert model.model_dump(by_alias=True) == {
        "quality": 50,
        "maxWidth": 100,
        "maxHeight": None,
    }


def test_options_quality_out_of_range() -> None:
    model, errors = validate_options(image_tool(), {"quality": 0})

    assert model is None
    assert len(errors) == 1
    assert errors[0].field == "input.options.quality"
    assert "must be an integer from 1 to 95" in errors[0].message


@pytest.mark.parametrize("value", ["high", "50", 50.0, True, None])
def test_options_quality_wrong_type(value: Any) -> None:
    model, errors = validate_options(image_tool(), {"quality": value})

    assert model is None
    assert [error.field for error in errors] == ["input.options.quality"]
    assert "must be an integer from 1 to 95" in errors[0].message


def test_options_unknown_name_listed() -> None:
    model, errors = validate_options(image_tool(), {"qualty": 5})

    assert model is None
    assert errors == [
        FieldError(
            field="input.options.qualty",
            message="unknown option 'qualty'; allowed options: quality, maxWidth, maxHeight",
        )
    ]


def test_options_snake_case_name_unknown() -> None:
    _, errors = validate_options(image_tool(), {"max_width": 100})
    assert [error.field for error in errors] == ["input.options.max_width"]
    assert "unknown option 'max_width'" in errors[0].message


def test_options_all_errors_listed() -> None:
    options = {"quality": 96, "maxWidth": 0, "maxHeight": "tall", "colour": "red"}
    model, errors = validate_options(image_tool(), options)

    assert model is None
    fields = sorted(error.field for error in errors)
    assert fields == [
        "input.options.colour",
        "input.options.maxHeight",
        "input.options.maxWidth",
        "input.options.quality",
    ]
    messages = {error.field: error.message for error in errors}
    assert messages["input.options.maxWidth"].startswith(
        "must be an integer from 1 to 20000 or null"
    )
    assert "unknown option 'colour'" in messages["input.options.colour"]


def test_options_not_an_object() -> None:
    model, errors = validate_options(image_tool(), [1, 2])  # type: ignore[arg-type]
    assert model is None
    assert errors == [FieldError(field="input.options", message="must be a JSON object")]


def test_options_custom_field_prefix() -> None:
    _, errors = validate_options(image_tool(), {"quality": 0}, field_prefix="options")
    assert [error.field for error in errors] == ["options.quality"]


def test_options_tool_without_options() -> None:
    mute = TOOLS["mute-video"]

    model, errors = validate_options(mute, {})
    assert model is None
    assert errors == []

    _, errors = validate_options(mute, {"volume": 0})
    assert errors == [
        FieldError(
            field="input.options.volume",
            message="unknown option 'volume'; this tool takes no options",
        )
    ]


def test_options_trim_end_before_start() -> None:
    trim = TOOLS["trim-video"]

    _, errors = validate_options(trim, {"start": 10, "end": 4})
    assert [error.field for error in errors] == ["input.options.end"]
    assert "greater than start" in errors[0].message

    model, errors = validate_options(trim, {"start": 1.5, "end": 4})
    assert errors == []
    assert model is not None
    assert model.model_dump(by_alias=True) == {
        "start": 1.5,
        "end": 4.0,
        "duration": None,
        "mode": "accurate",
    }

    _, errors = validate_options(trim, {"end": 4, "duration": 2})
    assert [error.field for error in errors] == ["input.options.duration"]


def test_options_page_range_order() -> None:
    pdf_to_text = TOOLS["pdf-to-text"]

    _, errors = validate_options(pdf_to_text, {"pageRange": "5-2"})
    assert [error.field for error in errors] == ["input.options.pageRange"]

    _, errors = validate_options(pdf_to_text, {"pageRange": "2-2"})
    assert errors == []


def test_options_enum_lists_allowed_values() -> None:
    _, errors = validate_options(TOOLS["html-to-pdf-api"], {"pageSize": "B5"})
    assert [error.field for error in errors] == ["input.options.pageSize"]
    assert '"A4"' in errors[0].message
    assert '"Letter"' in errors[0].message


@pytest.mark.parametrize("slug", WORKER_SLUGS)
def test_options_defaults_valid_for_every_tool(slug: str) -> None:
    tool = TOOLS[slug]
    model, errors = validate_options(tool, {})
    assert errors == []
    if tool.options_model is None:
        assert model is None
        return
    assert model is not None
    dumped = model.model_dump(by_alias=True)
    assert list(dumped) == list(tool.public()["optionsSchema"]["properties"])


# Office options


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", [(1, 1)]), ("1-3,5", [(1, 3), (5, 5)]), (" 2 - 4 , 7 ", [(2, 4), (7, 7)])],
)
def test_parse_page_range(text: str, expected: list[tuple[int, int]]) -> None:
    assert parse_page_range(text) == expected


@pytest.mark.parametrize("text", ["", "0", "3-1", "1,,2", "1-2-3", "a", "1-", "²", "100001"])
def test_parse_page_range_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_page_range(text)


def test_office_options_per_tool() -> None:
    word = set(TOOLS["word-to-pdf"].options_schema()["properties"])
    slides = set(TOOLS["slides-to-pdf"].options_schema()["properties"])
    sheets = set(TOOLS["spreadsheet-to-pdf"].options_schema()["properties"])
    assert slides == {"pageRange", "pdfA"}
    assert word == slides | {"landscape"}
    assert sheets == word | {"fitToWidth", "singlePageSheets"}


def test_long_page_range_message_names_limit() -> None:
    _, errors = validate_options(TOOLS["pdf-to-text"], {"pageRange": "1," * 150})
    assert [error.field for error in errors] == ["input.options.pageRange"]
    assert "at most 200 characters" in errors[0].message


def test_page_range_error_names_option() -> None:
    model, errors = validate_options(TOOLS["word-to-pdf"], {"pageRange": "5-2"})
    assert model is None
    assert errors == [
        FieldError(field="input.options.pageRange", message="the range '5-2' ends before it starts")
    ]
