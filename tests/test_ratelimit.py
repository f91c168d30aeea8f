"""Token buckets in process memory and in Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.api.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter, retry_after_header

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_available() -> bool:
    client: Redis = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "local":
        bucket_store: RateLimiter = LocalRateLimiter()
    else:
        if not await redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_URL}; start it to test shared limits")
        bucket_store = RedisRateLimiter(REDIS_URL)
    yield bucket_store
    await bucket_store.close()


async def test_burst_then_wait(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    results = [await limiter.acquire(key, rate=1, burst=3) for _ in range(4)]
    assert results[:3] == [None, None, None]
    wait = results[3]
    assert wait is not None
    assert 0.5 < wait <= 1.0


async def test_keys_have_separate_buckets(limiter: RateLimiter) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    assert await limiter.acquire(first, rate=1, burst=1) is None
    assert await limiter.acquire(first, rate=1, burst=1) is not None
    assert await limiter.acquire(second, rate=1, burst=1) is None


async def test_refill_over_time(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    assert await limiter.acquire(key, rate=20, burst=1) is None
    wait = await limiter.acquire(key, rate=20, burst=1)
    assert wait is not None
    assert wait <= 0.05 + 0.01


def test_retry_after_rounds_up() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
