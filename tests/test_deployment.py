"""The production compose file: its services, lanes and settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Lane, Settings

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.temporal.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    found: dict[str, Any] = compose["services"]
    return found


def test_stack_has_every_part(services: dict[str, Any]) -> None:
    expected = {"postgresql", "temporal", "temporal-ui", "minio", "minio-setup", "setup", "api"}
    assert expected <= set(services)
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["setup"]["command"][:4] == ["python", "-m", "app.cli", "setup"]


def test_one_worker_per_lane(services: dict[str, Any]) -> None:
    served = []
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and "worker.py" in command:
            lanes = command[command.index("--lanes") + 1].split(",")
            served.extend(lanes)
            assert name == f"worker-{lanes[0]}"
    assert sorted(served) == sorted(lane.value for lane in Lane)


def test_settings_are_known_and_valid(services: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name, service in services.items():
        environment = service.get("environment") or {}
        worklane = {k: v for k, v in environment.items() if k.startswith("WORKLANE_")}
        for key in worklane:
            assert key.removeprefix("WORKLANE_").lower() in fields, f"{name}: unknown {key}"
        if not worklane:
            continue
        values = {
            key.removeprefix("WORKLANE_").lower(): str(value) for key, value in worklane.items()
        }
        # ${NAME:-default} and ${NAME:?message} take their default, or a valid secret.
        for key, value in values.items():
            if value.startswith("${") and ":?" in value:
                values[key] = "x" * 40
            values[key] = _with_defaults(values[key])
        settings = Settings.model_validate(values)
        assert settings.storage == "s3"


def _with_defaults(value: str) -> str:
    while "${" in value:
        start = value.index("${")
        end = value.index("}", start)
        name, _, default = value[start + 2 : end].partition(":-")
        value = value[:start] + (default if default else name) + value[end + 1 :]
    return value


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is absent")
def test_compose_file_validates() -> None:
    env = dict(os.environ, WORKLANE_SIGNING_SECRET="s" * 40)
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
