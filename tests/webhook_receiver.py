"""A webhook receiver on 127.0.0.1 for tests that records each request and returns set statuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

REASONS = {200: "OK", 204: "No Content", 302: "Found", 410: "Gone", 500: "Internal Server Error"}


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


@dataclass
class Receiver:
    statuses: list[int]
    """Status of each response in turn; the last one repeats."""
    hang: bool = False
    """Read each request but never send a response."""
    requests: list[ReceivedRequest] = field(default_factory=list)
    port: int = 0
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/worklane"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").strip()
            method, path, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(ReceivedRequest(method, path, headers, body))
            if self.hang:
                await self.closing.wait()
                return
            index = min(len(self.requests), len(self.statuses)) - 1
            status = self.statuses[index]
            reason = REASONS.get(status, "Status")
            location = "Location: https://example.invalid/\r\n" if 300 <= status < 400 else ""
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\n{location}Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (ValueError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for_requests(self, count: int, timeout: float = 60) -> list[ReceivedRequest]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.requests) < count:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"the receiver got {len(self.requests)} requests, expected {count}")
            await asyncio.sleep(0.05)
        return self.requests


@contextlib.asynccontextmanager
async def running_receiver(statuses: list[int], *, hang: bool = False) -> AsyncIterator[Receiver]:
    """Serve a receiver on a free port of 127.0.0.1 for the duration of the block."""
    receiver = Receiver(statuses, hang=hang)
    server = await asyncio.start_server(receiver._handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.closing.set()
        server.close()
        await server.wait_closed()
