"""Settings errors, and the removal of job folders left by stopped workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, SettingsError, describe_errors, get_settings
from app.engines.files import job_folder, remove_orphaned_folders

ROOT = Path(__file__).parent.parent


def test_data_dir_made_absolute() -> None:
    assert Settings(data_dir=Path("relative/data")).data_dir.is_absolute()


def test_errors_name_variables_not_values() -> None:
    with pytest.raises(ValidationError) as failure:
        Settings.model_validate(
            {"storage": "s3", "s3_access_key_id": "AKIA", "s3_secret_access_key": "topsecret9"}
        )
    text = describe_errors(failure.value)
    assert "WORKLANE_S3_BUCKET must be set" in text
    assert "topsecret9" not in text


def test_get_settings_exits_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKLANE_STORAGE", "S3")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as failure:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "WORKLANE_STORAGE: Input should be 'local' or 's3'" in str(failure.value.code)


def test_empty_lanes_rejected() -> None:
    result = subprocess.run(
        [sys.executable, "worker.py", "--lanes", ""],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--lanes names no lane" in result.stderr


def test_orphaned_folders_removed_after_owner_exits(tmp_path: Path) -> None:
    owner = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from app.engines.files import job_folder
        folder = job_folder(Path({str(tmp_path)!r}), "job_dead")
        print(folder.name, flush=True)
        sys.stdin.read()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", owner],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    folder = Path(process.stdout.readline().strip())
    assert folder.is_dir()
    with job_folder(tmp_path, "job_alive") as mine:
        # The owner still runs: its folder stays.
        assert remove_orphaned_folders(tmp_path) == 0
        assert folder.is_dir()

        process.kill()
        process.wait(timeout=10)
        assert remove_orphaned_folders(tmp_path) == 1
        assert not folder.exists()
        assert Path(mine).is_dir()
