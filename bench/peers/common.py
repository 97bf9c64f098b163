"""What every peer shares: where Redis is, the job's body, and the producer interface.

The harness (``python -m bench.peers``) sets ``PEERS_REDIS_URL`` (a Redis database of
the run's own) and ``PEERS_RUN`` (a run id that names every queue) before it imports a
peer module, and the worker processes it starts inherit them, so producer and worker
agree on queue names without passing anything else.

The job is the same everywhere: take the start time, sleep ``ms`` milliseconds (0: a
no-op job), take the end time, and record ``"token start end"`` with one extra Redis
round trip (an ``RPUSH`` to :data:`DONE`). Times are ``time.monotonic()``, which on
Linux is the system-wide ``CLOCK_MONOTONIC``: comparable between processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import redis
import redis.asyncio

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/15")
RUN = os.environ.get("PEERS_RUN", "peers")
#: The list every job appends its ``token start end`` record to.
DONE = f"{RUN}:done"
#: Slots of a worker process, for every library that has such a setting.
CONCURRENCY = int(os.environ.get("PEERS_CONCURRENCY", "10"))
ROOT = Path(__file__).resolve().parents[2]
#: The virtual environment's scripts (``celery``, ``rq``, ...) next to its python.
BIN = Path(sys.executable).parent

Item = tuple[str, int]  # (token, milliseconds of sleep)


def queue_name(library: str) -> str:
    return f"{RUN}-{library}"


def record(token: str, start: float, end: float) -> str:
    return f"{token} {start:.6f} {end:.6f}"


async def work_async(client: redis.asyncio.Redis, token: str, ms: int) -> None:
    start = time.monotonic()
    if ms:
        await asyncio.sleep(ms / 1000)
    end = time.monotonic()
    await client.rpush(DONE, record(token, start, end))


def work_sync(client: redis.Redis, token: str, ms: int) -> None:
    start = time.monotonic()
    if ms:
        time.sleep(ms / 1000)
    end = time.monotonic()
    client.rpush(DONE, record(token, start, end))


_async_client: redis.asyncio.Redis | None = None
_sync_client: redis.Redis | None = None


def async_client() -> redis.asyncio.Redis:
    """One asyncio client per worker process, made on first use (in its event loop)."""
    global _async_client
    if _async_client is None:
        _async_client = redis.asyncio.Redis.from_url(URL)
    return _async_client


def sync_client() -> redis.Redis:
    """One thread-safe client (a connection pool) per worker process."""
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(URL)
    return _sync_client


class Peer:
    """A library's producer as an application would use it, and how to start its worker.

    Async libraries implement :meth:`add` (and :meth:`add_bulk` where they have a bulk
    call); libraries whose calls block (``sync``) implement :meth:`add_sync` and
    :meth:`add_bulk_sync`, and the harness drives them from threads.
    """

    name: ClassVar[str]
    #: The PyPI distribution whose version the report shows.
    distribution: ClassVar[str]
    sync: ClassVar[bool] = False
    bulk: ClassVar[bool] = False
    #: How the library's worker is run here, for the table's notes.
    worker_note: ClassVar[str] = ""

    async def open(self) -> None:
        """Connect (not timed)."""

    async def close(self) -> None:
        """Disconnect (not timed)."""

    async def add(self, token: str, ms: int) -> None:
        raise NotImplementedError

    async def add_bulk(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    def add_sync(self, token: str, ms: int) -> None:
        raise NotImplementedError

    def add_bulk_sync(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    def worker_command(self) -> list[str]:
        """The command of one worker process at :data:`CONCURRENCY`."""
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        return {}
