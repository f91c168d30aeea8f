"""Token-bucket rate limits per API key, in Redis when several API processes share them."""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def acquire(self, key: str, rate: float, burst: int) -> float | None:
        """Take one token; returns None when allowed, else the seconds until a token is free."""
        ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    """Buckets in this process's memory, so each API process enforces the limit on its own."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, key: str, rate: float, burst: int) -> float | None:
        now = time.monotonic()
        tokens, updated = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - updated) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    async def close(self) -> None:
        self._buckets.clear()


# Refill and take a token atomically on the Redis server, using the server's clock so that API
# processes on different machines agree. Returns the wait in milliseconds, 0 when allowed.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - updated) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'updated', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class RedisRateLimiter:
    """Buckets in Redis: one limit across every API process that uses the same server."""

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._script = self._redis.register_script(_TOKEN_BUCKET)

    async def acquire(self, key: str, rate: float, burst: int) -> float | None:
        try:
            wait_ms = int(
                await self._script(keys=[f"worklane:ratelimit:{key}"], args=[rate, burst])
            )
        except RedisError as err:
            # An unreachable Redis must not take the API down with it, so allow and log a warning.
            logger.warning("Rate limit check failed, request allowed: %s", err)
            return None
        return wait_ms / 1000 if wait_ms > 0 else None

    async def close(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(redis_url: str) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url)
    return LocalRateLimiter()


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))
