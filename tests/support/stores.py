"""Builders of real job stores for the store and admin tests, written once.

The local and memory store tests build the same e-mail job and catalogue; the admin
and failure-group tests open the same pairs of stores (Redis or memory in front of
SQLite or PostgreSQL: the two stores of Redis mode after an outage). Keeping them here
means one change of the test world reaches every test that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ils.clock import SystemClock
from ils.db.engine import create_engine
from ils.db.migrations import upgrade_database
from ils.jobs.admin import JobAdmin
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.model import JobOptions, NewJob
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.memory.store import MemoryJobStore
from ils.jobs.stores.redis.store import RedisJobStore
from ils.settings import Settings
from tests.conftest import delete_prefix

Q = "email"
#: (first store, second store): Redis comes first in ``JobSystem.stores()``.
PAIRS = ("redis+sqlite", "redis+postgres", "memory+sqlite")

Closer = Callable[[], Awaitable[None]]


def job(n: int = 0, **options: Any) -> NewJob:
    """An order confirmation of order ``o<n>``."""
    return NewJob("order-confirmation", {"orderId": f"o{n}", "userId": "u1"}, JobOptions(**options))


def email_catalogue(**email: Any) -> Catalogue:
    """The e-mail queue with a short back-off and lock and no rate limit, then ``email``."""
    base = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "rate_limit_max": 0}
    return build_catalogue(Settings(queues={Q: {**base, **email}}))


def unlimited_catalogue(*queues: str) -> Catalogue:
    """``queues`` without a rate limit: a fetch claims a waiting job at once."""
    unlimited = {queue: {"rate_limit_max": 0} for queue in queues}
    return build_catalogue(Settings(_env_file=None, queues=unlimited))


class Stores:
    """The stores a ``JobSystem`` in Redis mode reaches after an outage."""

    def __init__(self, *stores: JobStore) -> None:
        self.all = list(stores)

    def stores(self) -> list[JobStore]:
        return list(self.all)

    def reachable_stores(self) -> list[JobStore]:
        return list(self.all)


def admin_over(*stores: JobStore) -> JobAdmin:
    """An admin of every company over ``stores``."""
    return JobAdmin(Stores(*stores), SystemClock())


async def open_store(
    kind: str,
    request: pytest.FixtureRequest,
    catalogue: Catalogue,
    closers: list[Closer],
    *,
    poll_interval_ms: int = 20,
) -> JobStore:
    """A real store of ``kind``, closed (and its Redis keys deleted) after the test."""
    if kind == "memory":
        return MemoryJobStore(catalogue)
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        redis = RedisJobStore(url, catalogue, prefix=prefix)
        closers += [redis.close, lambda: delete_prefix(url, prefix)]
        return redis
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    await upgrade_database(url)
    local = LocalJobStore(create_engine(url), catalogue, poll_interval_ms=poll_interval_ms)
    closers.append(local.close)
    return local


@asynccontextmanager
async def store_pair(
    request: pytest.FixtureRequest, catalogue: Catalogue
) -> AsyncIterator[tuple[JobStore, JobStore]]:
    """The pair ``request.param`` names (one of :data:`PAIRS`), closed on the way out."""
    closers: list[Closer] = []
    try:
        first, second = request.param.split("+")
        yield (
            await open_store(first, request, catalogue, closers),
            await open_store(second, request, catalogue, closers),
        )
    finally:
        for close in closers:
            await close()
