"""Fixtures of the fault-injection tests (everything is stopped after the test).

* ``make_proxy(upstream_url, **kwargs) -> FaultProxy``: a started proxy in front of
  any TCP server.
* ``redis_proxy -> FaultProxy``: a proxy in front of this machine's Redis
  (``redis_url``); point clients at ``redis_proxy.url``.
* ``make_redis(url, *, timeout=2.0, retries=0, **kwargs) -> Redis``: a redis-py
  asyncio client (closed after the test) with a socket and connect timeout of
  ``timeout`` seconds and ``retries`` immediate retries. Note that redis-py 8's
  ``Redis.from_url`` retries nothing unless told, while ``Redis(host=...)`` retries
  3 times with backoff: say what you want.
* ``private_redis -> PrivateRedis``: a started ``redis-server`` of the test's own
  (AOF, ``appendfsync always``) in ``tmp_path``; ``kill9()``, ``restart()``, ...
* ``smtp_recorder -> SmtpRecorder``: a started recording SMTP server.
* ``cpu_hogs(count=None) -> CpuHogs``: starts busy processes (one per CPU by default).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.conftest import _missing
from tests.faults.load import CpuHogs
from tests.faults.proxy import FaultProxy
from tests.faults.redis_server import PrivateRedis
from tests.faults.smtp import SmtpRecorder

ProxyFactory = Callable[..., FaultProxy]
RedisFactory = Callable[..., Awaitable[Redis]]
HogsFactory = Callable[..., CpuHogs]


@pytest.fixture
def make_proxy() -> Iterator[ProxyFactory]:
    """Starts :class:`FaultProxy` objects: ``make_proxy("redis://127.0.0.1:6379/0")``."""
    made: list[FaultProxy] = []

    def factory(upstream: str, **kwargs: Any) -> FaultProxy:
        proxy = FaultProxy(upstream, **kwargs)
        made.append(proxy)
        return proxy.start()

    try:
        yield factory
    finally:
        for proxy in made:
            proxy.stop()


@pytest.fixture
def redis_proxy(redis_url: str, make_proxy: ProxyFactory) -> FaultProxy:
    """A started proxy in front of this machine's Redis."""
    return make_proxy(redis_url)


@pytest.fixture
async def make_redis() -> AsyncIterator[RedisFactory]:
    """Makes redis-py asyncio clients with explicit timeouts and retries."""
    made: list[Redis] = []

    async def factory(url: str, *, timeout: float = 2.0, retries: int = 0, **kwargs: Any) -> Redis:
        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), retries),
            **kwargs,
        )
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in made:
            await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started ``redis-server`` of the test's own (never the machine's)."""
    if shutil.which("redis-server") is None:
        _missing("redis-server")
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def smtp_recorder() -> Iterator[SmtpRecorder]:
    """A started SMTP server that records every message."""
    with SmtpRecorder() as server:
        yield server


@pytest.fixture
def cpu_hogs() -> Iterator[HogsFactory]:
    """Starts :class:`CpuHogs`: ``cpu_hogs(2)``; all are killed after the test."""
    made: list[CpuHogs] = []

    def factory(count: int | None = None, **kwargs: Any) -> CpuHogs:
        hogs = CpuHogs(count, **kwargs)
        made.append(hogs)
        return hogs.start()

    try:
        yield factory
    finally:
        for hogs in made:
            hogs.stop()
