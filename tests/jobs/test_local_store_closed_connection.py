"""A pooled connection the database server closed is an outage of the local store.

asyncpg reports a killed backend or a restarted server as
``ConnectionDoesNotExistError``, which SQLAlchemy wraps as a ``DBAPIError`` marked
``connection_invalidated`` but not as an ``OperationalError``; ``/healthz/ready``
answered 500 for it instead of 503 (``tests/faults/test_health_truth.py``, depending on
timing). Any other database error still propagates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from ils.errors import StoreUnavailableError
from ils.jobs.system import JobSystem
from ils.settings import Settings


def _failing(invalidated: bool) -> Any:
    async def run(body: Any, *, readonly: bool = False) -> Any:
        raise DBAPIError(
            "SELECT 1", {}, Exception("connection was closed"), connection_invalidated=invalidated
        )

    return run


async def test_a_closed_connection_makes_the_store_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        monkeypatch.setattr(system.local._runner, "run", _failing(invalidated=True))
        health = await system.local.health()
        assert not health.reachable
        assert health.error == "database unreachable (DBAPIError)"
        with pytest.raises(StoreUnavailableError):
            await system.local.counts("email")
    finally:
        monkeypatch.undo()
        await system.close()


async def test_another_database_error_is_not_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        monkeypatch.setattr(system.local._runner, "run", _failing(invalidated=False))
        with pytest.raises(DBAPIError):
            await system.local.health()
    finally:
        monkeypatch.undo()
        await system.close()
