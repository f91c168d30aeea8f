"""Replay of recorded workflow histories against the current code, and its determinism rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.workflows.job import JobWorkflow
from app.workflows.webhook import WebhookWorkflow

HISTORY_DIR = Path(__file__).parent / "histories"
WORKFLOW_DIR = Path(__file__).parent.parent / "app" / "workflows"
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))

# Modules that workflow code may import: none of them reads the clock, randomness or I/O
# when imported, and the workflow uses only their deterministic parts.
ALLOWED_IMPORTS = (
    "__future__",
    "asyncio",
    "datetime",
    "enum",
    "typing",
    "pydantic",
    "temporalio",
    "app.errors",
    "app.workflows",
)
FORBIDDEN_CALLS = {"now", "utcnow", "today", "sleep", "time", "random", "uuid4", "open", "getenv"}


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 7, f"expected recorded histories in {HISTORY_DIR}"


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[JobWorkflow, WebhookWorkflow], data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", sorted(WORKFLOW_DIR.glob("*.py")), ids=lambda path: path.name)
def test_workflow_code_stays_deterministic(path: Path) -> None:
    # JobWorkflow runs outside the SDK's sandbox, so this check replaces the sandbox's import rules.
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                assert module.startswith(ALLOWED_IMPORTS), (
                    f"{path.name}:{node.lineno} imports {module}"
                )
        if isinstance(node, ast.Call):
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            owner = node.func.value if isinstance(node.func, ast.Attribute) else None
            # workflow.now(), workflow.sleep() and workflow.uuid4() are the deterministic forms.
            if isinstance(owner, ast.Name) and owner.id == "workflow":
                continue
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
