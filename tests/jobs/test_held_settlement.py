"""Held jobs under a burst: no add fails for want of a connection, and a held job whose
add failed is resolved at once, not left for some other process's sweep.

Reproduces a clean-clone CI failure of ``tests/faults/test_fallback_faults.py::
test_load_is_not_an_outage``: 50 tasks enqueuing beside CPU hogs left more than 100
adds in flight (each one past its budget is held and keeps running), the producers'
pool refused the next with ``MaxConnectionsError`` ("redis unavailable"), those held
rows were released, and in a process without an outbox sweep nothing relayed them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ils.errors import StoreUnavailableError
from ils.jobs.outbox import HELD
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from tests.conftest import delete_prefix


async def _redis_system(tmp_path: Path, redis_url: str, redis_prefix: str) -> JobSystem:
    return await JobSystem.open(
        Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_prefix=redis_prefix)
    )


async def test_a_burst_of_adds_waits_for_connections_instead_of_failing(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    system = await _redis_system(tmp_path, redis_url, redis_prefix)
    try:
        assert system.redis is not None
        job_type = system.job_types.get("email", "general-notification")
        payloads = [
            job_type.model(user_id="u1", subject=f"Burst {n}", content="Body.") for n in range(400)
        ]
        jobs = [
            system.producer.prepare(
                "email", "general-notification", payload, job_type.options_for(payload)
            )
            for payload in payloads
        ]
        outcomes = await asyncio.gather(
            *(system.redis.add("email", job) for job in jobs), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures == []
        assert (await system.redis.counts("email"))["waiting"] == 400
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_a_held_job_whose_add_failed_is_resolved_without_a_sweep(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: Any
) -> None:
    system = await _redis_system(tmp_path, redis_url, redis_prefix)
    try:
        assert system.redis is not None
        answer = asyncio.Event()

        async def slow_then_failed() -> str:
            await answer.wait()
            raise StoreUnavailableError("redis unavailable: the add failed", unsent=True)

        monkeypatch.setattr(
            system.redis,
            "start_add_bulk",
            lambda queue, jobs: asyncio.ensure_future(slow_then_failed()),
        )
        ref = await system.helpers.queue_general_notification_email("u1", "Held", "Body.")
        assert ref.store == HELD
        assert (await system.producer.outbox.held()).count == 1
        monkeypatch.undo()  # Redis answers normally again; the failed add answers now
        answer.set()

        async def resolved() -> bool:
            return (await system.producer.outbox.held()).count == 0

        await eventually(resolved, 10, message="the held job stayed held")
        assert system.redis is not None
        job = await system.redis.get_job("email", ref.job_id)
        assert job is not None
        held = await system.producer.outbox.held()
        assert held.resolved == {"was_in_redis": 0, "added_again": 1}
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)
