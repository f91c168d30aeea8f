"""A local S3-compatible server for the tests: moto's server behind a presigned-URL check.

moto implements the S3 API (buckets, objects, ranges, multipart uploads, conditional writes,
response header overrides) but accepts any signature. AWS S3 and MinIO verify the signature of
a presigned URL over the headers it names and refuse expired URLs. So that tests see what those
stores do, requests reach moto through a gate on loopback that checks presigned URLs the way
they do (Signature Version 4: canonical request, string to sign, derived key) and returns
errors in their XML format. Requests signed in an ``Authorization`` header, which only the
service itself sends, pass unchecked.

Run as ``python -m tests.s3server --port PORT --upstream URL --secret KEY``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ACCESS_KEY_ID = "WORKLANETESTKEY"
SECRET_ACCESS_KEY = "worklane-test-secret-access-key-0123456789"
REGION = "us-east-1"
BUCKET = "worklane-test"


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
        if name != "X-Amz-Signature":
            pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def presign_problem(
    method: str, raw_path: str, raw_query: str, headers: dict[str, str], secret: str, now: float
) -> Response | None:
    """Check a presigned request; return the store's error response, or None when it is valid."""
    query = {}
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        query[unquote(name)] = unquote(value)
    try:
        credential = query["X-Amz-Credential"].split("/")
        amz_date = query["X-Amz-Date"]
        expires = int(query["X-Amz-Expires"])
        signed_names = query["X-Amz-SignedHeaders"].split(";")
        signature = query["X-Amz-Signature"]
        date, region, service = credential[1], credential[2], credential[3]
    except (KeyError, IndexError, ValueError):
        return _s3_error(400, "AuthorizationQueryParametersError", "Malformed presigned URL.")

    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    if now > signed_at + expires:
        return _s3_error(403, "AccessDenied", "Request has expired")

    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_names
    )
    canonical_request = "\n".join(
        [
            method,
            raw_path,
            _canonical_query(raw_query),
            canonical_headers,
            ";".join(signed_names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for step in (date, region, service, "aws4_request"):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return _s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


@dataclass
class Gate:
    """ASGI application that checks presigned URLs and forwards every request to moto."""

    upstream: str
    secret: str
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.upstream, timeout=60)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw_path = scope["raw_path"].decode()
        raw_query = scope["query_string"].decode()
        headers = {name.lower(): value for name, value in request.headers.items()}
        response: Response | None = None
        if "X-Amz-Algorithm=" in raw_query:
            response = presign_problem(
                request.method, raw_path, raw_query, headers, self.secret, time.time()
            )
        if response is None:
            body = await request.body()
            forwarded = {k: v for k, v in headers.items() if k not in {"host", "content-length"}}
            target = raw_path + (f"?{raw_query}" if raw_query else "")
            upstream = await self.client.request(
                request.method, target, content=body, headers=forwarded
            )
            dropped = {"transfer-encoding", "content-encoding"}
            if request.method != "HEAD":  # a HEAD answer's length is the object's size
                dropped.add("content-length")
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
            response = Response(upstream.content, upstream.status_code, headers=passed)
        await response(scope, receive, send)


@dataclass
class S3Server:
    """moto's server and the gate in front of it, as child processes on loopback."""

    port: int
    moto_port: int
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings_fields(self) -> dict[str, str]:
        """Settings that select this server's bucket, by field name."""
        return {
            "storage": "s3",
            "s3_bucket": BUCKET,
            "s3_region": REGION,
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
        }

    def settings_env(self) -> dict[str, str]:
        """The same settings as environment variables."""
        return {f"WORKLANE_{name.upper()}": value for name, value in self.settings_fields().items()}

    def _spawn(self, name: str, command: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("wb")
        self.logs.append(log)
        self.processes.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        )

    def start(self) -> None:
        self._spawn(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
        )
        self._spawn(
            "s3-gate",
            [
                sys.executable,
                "-m",
                "tests.s3server",
                "--port",
                str(self.port),
                "--upstream",
                f"http://127.0.0.1:{self.moto_port}",
                "--secret",
                SECRET_ACCESS_KEY,
            ],
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                created = httpx.put(f"{self.endpoint_url}/{BUCKET}", timeout=2)
                if created.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args!r} exited; see the logs in {self.log_dir}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the S3 server did not start; see the logs in {self.log_dir}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    gate = Gate(args.upstream, args.secret)
    uvicorn.run(gate, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
