"""Clients of the Worklane jobs API: ``AsyncClient`` and its blocking twin ``Client``."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from worklane_client.errors import (
    ApiError,
    JobFailedError,
    TransportError,
    WaitTimeoutError,
)

FINISHED_STATUSES = frozenset({"succeeded", "failed", "canceled"})
CHUNK_BYTES = 1024 * 1024
RETRY_PAUSE_SECONDS = 0.5
POLL_FIRST_SECONDS = 0.25
POLL_LONGEST_SECONDS = 2.0

ByteProgress = Callable[[int, int | None], None]
"""Called with the bytes moved so far and the total, when known."""
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """A job as the API returns it; ``data`` contains every field, in camelCase."""

    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def progress(self) -> int:
        return int(self.data.get("progress") or 0)

    @property
    def attempt(self) -> int:
        return int(self.data.get("attempt") or 0)

    @property
    def tool_slug(self) -> str:
        return str(self.data["toolSlug"])

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self.data.get("error")
        return error

    @property
    def output(self) -> dict[str, Any] | None:
        output: dict[str, Any] | None = self.data.get("output")
        return output

    @property
    def upload_intent(self) -> dict[str, Any] | None:
        intent: dict[str, Any] | None = self.data.get("uploadIntent")
        return intent

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def _api_error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(
            response.status_code, str(error["code"]), str(error["message"]), error.get("details")
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:300]
        return ApiError(response.status_code, f"http_{response.status_code}", text or "no body")


def _content_type_for(tool: dict[str, Any], path: Path) -> str:
    suffix = path.suffix.lower()
    for accepted in tool.get("acceptedTypes") or []:
        if suffix in accepted["extensions"]:
            return str(accepted["contentType"])
    known = ", ".join(ext for kind in tool.get("acceptedTypes") or [] for ext in kind["extensions"])
    raise ApiError(
        422,
        "invalid_job",
        f"{tool['slug']} does not take '{suffix or path.name}' files; it takes {known or 'none'}",
    )


async def _size(path: Path) -> int:
    return (await asyncio.to_thread(path.stat)).st_size


async def _file_chunks(path: Path, on_progress: ByteProgress | None) -> AsyncIterator[bytes]:
    total = await _size(path)
    done = 0
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            done += len(chunk)
            yield chunk
            if on_progress:
                on_progress(done, total)


class AsyncClient:
    """Client over ``httpx.AsyncClient``; use it as ``async with AsyncClient() as client``.

    ``base_url`` and ``api_key`` default to ``WORKLANE_API_URL`` and ``WORKLANE_API_KEY``.
    Requests that get no response, or a 429 or 5xx response, are retried ``max_retries``
    times. Every create carries an ``Idempotency-Key`` that its retries reuse, so a retry
    never creates a second job.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
    ) -> None:
        base_url = base_url or os.environ.get("WORKLANE_API_URL", "")
        api_key = api_key or os.environ.get("WORKLANE_API_KEY", "")
        if not base_url:
            raise ValueError("set WORKLANE_API_URL or pass base_url, such as http://127.0.0.1:8000")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the API URL '{base_url}' must start with http:// or https://, "
                "such as http://127.0.0.1:8000"
            )
        if not api_key:
            raise ValueError("set WORKLANE_API_KEY or pass api_key")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._api = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        # Upload and download URLs are signed; they get no API key.
        self._files = httpx.AsyncClient(timeout=httpx.Timeout(timeout, read=300.0))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._files.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = True,
    ) -> Any:
        attempts = self.max_retries + 1 if retry else 1
        for attempt in range(1, attempts + 1):
            pause = RETRY_PAUSE_SECONDS * 2 ** (attempt - 1)
            try:
                response = await self._api.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as err:
                if attempt == attempts:
                    raise TransportError(
                        "connection_failed", f"{method} {self.base_url}{path}: {err!r}"
                    ) from err
                await asyncio.sleep(pause)
                continue
            if response.status_code < 400:
                return response.json()
            error = _api_error(response)
            if not error.retryable or attempt == attempts:
                raise error
            retry_after = response.headers.get("Retry-After", "")
            await asyncio.sleep(float(retry_after) if retry_after.isdigit() else pause)
        raise AssertionError("unreachable")

    async def tools(self) -> list[dict[str, Any]]:
        listing = await self._request("GET", "/v1/tools")
        tools: list[dict[str, Any]] = listing["data"]
        return tools

    async def tool(self, slug: str) -> dict[str, Any]:
        entry: dict[str, Any] = await self._request("GET", f"/v1/tools/{slug}")
        return entry

    async def create_job(
        self,
        tool_slug: str,
        job_input: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Job:
        """Create a job; ``fields`` are the other body fields in camelCase (``webhookUrl``)."""
        body = {"toolSlug": tool_slug, "input": job_input} | {
            key: value for key, value in fields.items() if value is not None
        }
        key = idempotency_key or f"wlc-{uuid.uuid4()}"
        data = await self._request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
        return Job(data)

    async def create_file_job(
        self,
        tool_slug: str,
        source: str | Path,
        *,
        content_type: str | None = None,
        options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job:
        """Create a job for a local file; its content type comes from the tool's catalog entry."""
        path = Path(source)
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(f"no file at {path}")
        if content_type is None:
            content_type = _content_type_for(await self.tool(tool_slug), path)
        job_input = {
            "kind": "file",
            "name": path.name,
            "contentType": content_type,
            "sizeBytes": await _size(path),
            "options": options or {},
        }
        return await self.create_job(tool_slug, job_input, **fields)

    async def upload(
        self, job: Job, source: str | Path, on_progress: ByteProgress | None = None
    ) -> None:
        """Send the file to the job's upload intent, with every header it names."""
        intent = job.upload_intent
        if intent is None:
            raise ApiError(409, "upload_not_accepted", f"job {job.id} takes no upload now")
        path = Path(source)
        headers = dict(intent["headers"]) | {"Content-Length": str(await _size(path))}
        try:
            response = await self._files.request(
                intent.get("method", "PUT"),
                intent["url"],
                content=_file_chunks(path, on_progress),
                headers=headers,
            )
        except httpx.TransportError as err:
            raise TransportError("upload_failed", f"upload of {path.name}: {err!r}") from err
        if response.status_code >= 300:
            raise _api_error(response)

    async def get_job(self, job_id: str) -> Job:
        return Job(await self._request("GET", f"/v1/jobs/{job_id}"))

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        tool_slug: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[Job], str | None]:
        """Return one page of jobs, newest first, and the cursor of the next page."""
        params = {"status": status, "toolSlug": tool_slug, "limit": limit, "cursor": cursor}
        page = await self._request(
            "GET", "/v1/jobs", params={k: v for k, v in params.items() if v is not None}
        )
        return [Job(item) for item in page["data"]], page.get("nextCursor")

    async def cancel(self, job_id: str) -> Job:
        return Job(await self._request("POST", f"/v1/jobs/{job_id}/cancel", retry=False))

    async def close_job(self, job_id: str) -> Job:
        return Job(await self._request("POST", f"/v1/jobs/{job_id}/close"))

    async def wait(
        self,
        job_id: str,
        *,
        wait_seconds: float = 600.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job finishes, with pauses growing from 0.25 s to 2 s; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        pause = POLL_FIRST_SECONDS
        while True:
            job = await self.get_job(job_id)
            if on_update:
                on_update(job)
            if job.finished:
                return job
            if loop.time() + pause > deadline:
                raise WaitTimeoutError(job, wait_seconds)
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, POLL_LONGEST_SECONDS)

    async def download(
        self, job_id: str, dest: str | Path, on_progress: ByteProgress | None = None
    ) -> Path:
        """Save the job's output to ``dest`` (a file, or a folder for the output's own name)."""
        intent = await self._request("POST", f"/v1/jobs/{job_id}/download-intent")
        target = Path(dest)
        if await asyncio.to_thread(target.is_dir):
            target = target / Path(intent["fileName"]).name
        partial = target.with_name(f".{target.name}.part")
        try:
            async with self._files.stream("GET", intent["url"]) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise _api_error(response)
                total = int(response.headers.get("Content-Length", 0)) or None
                done = 0
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        await asyncio.to_thread(out.write, chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(done, total)
            partial.replace(target)
        except httpx.TransportError as err:
            raise TransportError("download_failed", f"download of job {job_id}: {err!r}") from err
        finally:
            partial.unlink(missing_ok=True)
        return target

    async def convert(
        self,
        tool_slug: str,
        source: str | Path,
        dest: str | Path,
        *,
        options: dict[str, Any] | None = None,
        wait_seconds: float = 600.0,
        on_upload: ByteProgress | None = None,
        on_update: Callable[[Job], None] | None = None,
        on_download: ByteProgress | None = None,
        **fields: Any,
    ) -> Job:
        """Create a job for a local file, upload it, wait, and download the output to ``dest``.

        Raises ``JobFailedError`` when the job fails or is canceled, and ``FileNotFoundError``
        before creating the job when the output's folder does not exist.
        """
        target = Path(dest)
        folder = target if await asyncio.to_thread(target.is_dir) else target.parent
        if not await asyncio.to_thread(folder.is_dir):
            raise FileNotFoundError(f"no folder at {folder} for the output")
        job = await self.create_file_job(tool_slug, source, options=options, **fields)
        await self.upload(job, source, on_upload)
        finished = await self.wait(job.id, wait_seconds=wait_seconds, on_update=on_update)
        if finished.status != "succeeded":
            raise JobFailedError(finished)
        await self.download(job.id, dest, on_download)
        return finished


class Client:
    """Blocking client with the methods of ``AsyncClient``; use it as ``with Client() as c``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kw: Any):
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(base_url, api_key, **kw)

    def _run(self, call: Awaitable[T]) -> T:
        async def _await() -> T:
            return await call

        coroutine: Coroutine[Any, Any, T] = _await()
        return self._loop.run_until_complete(coroutine)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._async.aclose())
            self._loop.close()

    def tools(self) -> list[dict[str, Any]]:
        return self._run(self._async.tools())

    def tool(self, slug: str) -> dict[str, Any]:
        return self._run(self._async.tool(slug))

    def create_job(self, tool_slug: str, job_input: dict[str, Any], **kw: Any) -> Job:
        return self._run(self._async.create_job(tool_slug, job_input, **kw))

    def create_file_job(self, tool_slug: str, source: str | Path, **kw: Any) -> Job:
        return self._run(self._async.create_file_job(tool_slug, source, **kw))

    def upload(self, job: Job, source: str | Path, on_progress: ByteProgress | None = None) -> None:
        self._run(self._async.upload(job, source, on_progress))

    def get_job(self, job_id: str) -> Job:
        return self._run(self._async.get_job(job_id))

    def list_jobs(self, **kw: Any) -> tuple[list[Job], str | None]:
        return self._run(self._async.list_jobs(**kw))

    def cancel(self, job_id: str) -> Job:
        return self._run(self._async.cancel(job_id))

    def close_job(self, job_id: str) -> Job:
        return self._run(self._async.close_job(job_id))

    def wait(self, job_id: str, **kw: Any) -> Job:
        return self._run(self._async.wait(job_id, **kw))

    def download(self, job_id: str, dest: str | Path, **kw: Any) -> Path:
        return self._run(self._async.download(job_id, dest, **kw))

    def convert(self, tool_slug: str, source: str | Path, dest: str | Path, **kw: Any) -> Job:
        return self._run(self._async.convert(tool_slug, source, dest, **kw))
