"""Signatures of webhook deliveries, as the Standard Webhooks specification defines them.

Each delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` values, one per valid
secret, over ``"{id}.{timestamp}.{body}"``. A secret is ``whsec_`` followed by the base64 of
its key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
TIMESTAMP_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """A delivery's headers are missing, too old, or carry no valid signature."""


def new_secret() -> str:
    """Return a new random secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,`` signature of the body under ``secret``."""
    content = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    signing_secrets: Iterable[str], event_id: str, timestamp: int, body: bytes
) -> str:
    """Return the ``webhook-signature`` value: a signature under each secret."""
    return " ".join(sign(secret, event_id, timestamp, body) for secret in signing_secrets)


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise ``WebhookVerificationError`` unless one signature matches and the time is recent."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        event_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as err:
        raise WebhookVerificationError("missing or invalid webhook headers") from err
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
        raise WebhookVerificationError("the timestamp is too far from the current time")
    expected = sign(secret, event_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookVerificationError("no signature matches the secret")
