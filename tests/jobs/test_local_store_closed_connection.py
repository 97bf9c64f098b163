"""A pooled connection the database server closed is an outage of the local store.

asyncpg reports a killed backend or a restarted server as
``ConnectionDoesNotExistError``, which SQLAlchemy wraps as a ``DBAPIError`` marked
``connection_invalidated`` but not as an ``OperationalError``; ``/healthz/ready``
answered 500 for it instead of 503 (``tests/faults/test_health_truth.py``, depending on
timing). Any other database error still propagates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from ils.errors import StoreUnavailableError
from ils.jobs.stores.local.store import LocalJobStore
from ils.testing import open_test_system


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalJobStore]:
    """The local store of a test system (the embedded default)."""
    async with open_test_system(tmp_path) as test_system:
        yield test_system.system.local


@contextmanager
def every_transaction_failing(store: LocalJobStore, *, invalidated: bool) -> Iterator[None]:
    """Inside the block, every transaction of ``store`` fails as a closed connection
    does (``invalidated``) or as any other database error; the system closes after
    the block with its real transactions."""

    async def run(body: Any, *, readonly: bool = False) -> Any:
        raise DBAPIError(
            "SELECT 1", {}, Exception("connection was closed"), connection_invalidated=invalidated
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store._runner, "run", run)
        yield


async def test_a_closed_connection_makes_the_store_unavailable(local: LocalJobStore) -> None:
    with every_transaction_failing(local, invalidated=True):
        health = await local.health()
        assert not health.reachable
        assert health.error == "database unreachable (DBAPIError)"
        with pytest.raises(StoreUnavailableError):
            await local.counts("email")


async def test_another_database_error_is_not_an_outage(local: LocalJobStore) -> None:
    with every_transaction_failing(local, invalidated=False), pytest.raises(DBAPIError):
        await local.health()
