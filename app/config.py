"""Service settings, read from the environment with the ``WORKLANE_`` prefix."""

from __future__ import annotations

import enum
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SIGNING_SECRET = "worklane-development-signing-secret-change-me"


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class StorageKind(enum.StrEnum):
    LOCAL = "local"
    S3 = "s3"


class Lane(enum.StrEnum):
    """Task-queue lanes; each kind of work scales on its own workers."""

    LIGHT = "light"
    DOCUMENTS = "documents"
    MEDIA = "media"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKLANE_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".data")
    database_url: str = ""
    """SQLAlchemy async URL; empty means an SQLite file in ``data_dir``."""

    redis_url: str = ""
    """Redis for rate limits shared by several API processes; empty keeps them per process."""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue_prefix: str = "worklane"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = ""
    """Base URL that signed upload and download URLs point at; empty means the API address."""

    signing_secret: str = DEVELOPMENT_SIGNING_SECRET
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest JSON request body; file inputs go through upload URLs instead."""
    upload_intent_ttl_seconds: int = Field(default=900, ge=10, le=86_400)
    download_intent_ttl_seconds: int = Field(default=300, ge=10, le=86_400)
    upload_poll_seconds: int = Field(default=5, ge=1)
    """Maximum pause between a queued job's checks for its input when the store sends no
    upload signal (S3); the pauses grow from one second to this."""

    storage: StorageKind = StorageKind.LOCAL
    """``local`` keeps objects under ``data_dir``; ``s3`` keeps them in an S3 bucket."""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_endpoint_url: str = ""
    """Address of an S3-compatible server such as MinIO; empty means AWS S3."""
    s3_public_endpoint_url: str = ""
    """Address that clients use in upload and download URLs; empty means ``s3_endpoint_url``."""
    s3_access_key_id: str = ""
    """Empty means the AWS credential chain (environment, profile, instance role)."""
    s3_secret_access_key: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    """``auto`` means path style with ``s3_endpoint_url`` and virtual hosts on AWS."""

    max_retention_seconds: int | None = Field(default=None, ge=1)
    """Upper bound on how long outputs are kept, below each tool's own retention."""

    activity_heartbeat_seconds: float = Field(default=10.0, gt=0)
    heartbeat_throttle_seconds: float = Field(default=1.0, gt=0)
    image_engine_processes: int = Field(default=2, ge=1)
    """Pillow conversions one worker runs at once, each in its own process."""

    libreoffice_path: str = "soffice"
    """LibreOffice's ``soffice`` launcher, as a path or a command name on PATH."""
    libreoffice_python: str = "/usr/bin/python3"
    """Python that can import LibreOffice's ``uno`` module (Debian's python3-uno)."""
    libreoffice_pool_size: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Warm LibreOffice processes per worker, each converting one document at a time."""
    libreoffice_max_conversions: int = Field(default=100, ge=1)
    """Conversions after which a LibreOffice process is replaced, to bound its memory."""
    libreoffice_start_timeout_seconds: float = Field(default=60.0, gt=0)
    libreoffice_conversion_timeout_seconds: float = Field(default=240.0, gt=0)
    """Time limit of one conversion; the job's deadline applies as well."""
    libreoffice_isolate_network: bool = True
    """Run LibreOffice in an empty network namespace where the worker is allowed to."""

    log_format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object per log line, with job id, workflow id, tool and attempt."""
    worker_metrics_address: str = ""
    """Host and port where a worker serves Prometheus metrics, such as 127.0.0.1:9464; empty
    serves none."""

    ffmpeg_path: str = ""
    """ffmpeg to run, as a path or a command name; empty means the one imageio-ffmpeg ships."""
    video_engine_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """ffmpeg runs one worker starts at once on the media lane."""

    webhook_allow_http: bool = False
    """Accept ``http`` webhook URLs as well as ``https``; for development and tests."""
    webhook_allow_private_targets: bool = False
    """Deliver webhooks to loopback, private and link-local addresses; for development and
    tests, since it lets job creators reach the service's own network."""
    webhook_retry_initial_seconds: float = Field(default=5.0, gt=0)
    """Pause before the second delivery attempt; each later pause doubles."""
    webhook_retry_max_interval_seconds: float = Field(default=3600.0, gt=0)
    """Maximum pause between two delivery attempts."""
    webhook_retry_window_seconds: float = Field(default=25 * 3600.0, gt=0)
    """Time after the first attempt during which failed deliveries are retried."""
    webhook_request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Time limit of one delivery attempt, from connecting to the response status."""
    webhook_secret_grace_seconds: int = Field(default=24 * 3600, ge=0)
    """How long the previous signing secret keeps signing deliveries after a rotation."""

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # Engines run in other working directories (LibreOffice's TMPDIR, for one).
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _require_bucket(self) -> Settings:
        if self.storage is StorageKind.S3 and not self.s3_bucket:
            raise ValueError("WORKLANE_S3_BUCKET must be set when WORKLANE_STORAGE is s3")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError(
                "Set both WORKLANE_S3_ACCESS_KEY_ID and WORKLANE_S3_SECRET_ACCESS_KEY, or neither"
            )
        return self

    @model_validator(mode="after")
    def _reject_unsafe_production_values(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            if self.signing_secret == DEVELOPMENT_SIGNING_SECRET or len(self.signing_secret) < 32:
                raise ValueError(
                    "WORKLANE_SIGNING_SECRET must be set to a random value of at least "
                    "32 characters in production"
                )
        return self

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def work_dir(self) -> Path:
        """Parent of the per-conversion temporary directories."""
        return self.data_dir / "work"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'worklane.db').resolve()}"

    @property
    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def libreoffice_profile_dir(self) -> Path:
        """Parent of the LibreOffice pools' user profiles."""
        return self.data_dir / "libreoffice"

    def task_queue(self, lane: Lane) -> str:
        return f"{self.task_queue_prefix}-{lane.value}"


class SettingsError(SystemExit):
    """Invalid settings; raising it ends the process with one line per problem, no traceback."""


def describe_errors(err: ValidationError) -> str:
    """List the problems by environment variable, without their values (which may be secrets)."""
    lines = []
    for problem in err.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"WORKLANE_{field.upper()}: {message}" if field else message)
    return "invalid settings:\n  " + "\n  ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        raise SettingsError(describe_errors(err)) from None
