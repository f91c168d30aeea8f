"""HMAC-signed upload and download URLs for the local blob store.

A signature binds the method, object key, content type, size (uploads) or file name
(downloads), and expiry time, so changing any of them invalidates the URL.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, urlencode

BLOB_PATH = "/v1/blobs/"


class SignatureError(Exception):
    """The URL was not signed by this service, was altered, or has expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    method: str
    object_key: str
    content_type: str
    expires: int
    size_bytes: int | None = None
    file_name: str | None = None

    def canonical(self) -> bytes:
        parts = [
            self.method.upper(),
            self.object_key,
            self.content_type,
            str(self.expires),
            "" if self.size_bytes is None else str(self.size_bytes),
            self.file_name or "",
        ]
        return "\n".join(parts).encode()

    def signature(self, secret: str) -> str:
        return hmac.new(secret.encode(), self.canonical(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, secret: str) -> str:
        query: dict[str, str] = {"contentType": self.content_type, "expires": str(self.expires)}
        if self.size_bytes is not None:
            query["size"] = str(self.size_bytes)
        if self.file_name is not None:
            query["fileName"] = self.file_name
        query["signature"] = self.signature(secret)
        return f"{base_url}{BLOB_PATH}{quote(self.object_key)}?{urlencode(query)}"


def verify(request: SignedRequest, signature: str, secret: str, now: float) -> None:
    """Raise ``SignatureError`` unless the signature matches and has not expired."""
    expected = request.signature(secret)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError(
            "invalid_signature",
            "The URL signature does not match. Request a new intent and use its URL unchanged.",
        )
    if now > request.expires:
        raise SignatureError(
            "url_expired",
            "The URL has expired. Request a new intent for this job.",
        )
