"""What operators read: the API's and the worker's Prometheus metrics, and JSON log lines."""

from __future__ import annotations

import json
import re

import httpx

from tests.e2e.conftest import Account, Stack, run_file_job
from tests.images import gradient_png

TEXT_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


async def test_metrics_count_jobs_and_conversions(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    job = await run_file_job(http, account, gradient_png())
    assert job["status"] == "succeeded", job["error"]

    api = (await http.get("/metrics")).text
    assert 'worklane_jobs_created_total{tool="image-compress-api"}' in api
    assert "worklane_http_request_seconds_bucket" in api

    async with httpx.AsyncClient(timeout=10) as client:
        worker = (await client.get(stack.worker_metrics_url)).text
    duration = [
        line
        for line in worker.splitlines()
        if line.startswith("worklane_conversion_duration_count")
        and 'tool="image-compress-api"' in line
        and 'outcome="succeeded"' in line
    ]
    assert duration, worker[:2000]
    assert "temporal_activity_execution_latency" in worker


async def test_worker_logs_json_with_context(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    job = await run_file_job(http, account, gradient_png())
    assert job["status"] == "succeeded", job["error"]
    lines = (stack.log_dir / "worker.log").read_text(encoding="utf-8").splitlines()
    # Child processes may write other text to the same file, but no logger writes plain text.
    assert not [text for text in lines if TEXT_LOG_LINE.match(text)]
    finished = []
    for text in lines:
        if not text.startswith("{"):
            continue
        line = json.loads(text)
        if line.get("message") == "Conversion finished" and line.get("job_id") == job["id"]:
            finished.append(line)
    assert len(finished) == 1
    assert finished[0]["workflow_id"] == job["id"]
    assert finished[0]["tool"] == "image-compress-api"
    assert finished[0]["attempt"] == 1


def test_setup_command_finds_search_attributes(stack: Stack) -> None:
    # The dev server registers them at start, so setup only confirms; it may run any time.
    output = stack.cli("setup")
    assert "database schema is up to date" in output
    assert "already registered" in output
