"""Redis's eviction policy is checked each time Redis comes back, not only at start.

A Redis that comes back (or fails over) with ``allkeys-lru`` may silently delete queue
keys under memory pressure: with ``ILS_REDIS_REQUIRE_NOEVICTION=true`` it is not used
(jobs stay on the local store) until the policy is safe again, and health names the
problem either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.faults.proxy import FaultProxy
from tests.faults.redis_server import PrivateRedis
from tests.faults.wait import eventually

pytestmark = pytest.mark.redis


async def _policy(url: str, policy: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.config_set("maxmemory-policy", policy)
    finally:
        await client.aclose()


async def test_unsafe_policy_after_a_comeback_keeps_redis_unused(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    with FaultProxy(private_redis.url) as proxy:
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            redis_url=proxy.url,
            redis_require_noeviction=True,
            redis_probe_interval_s=0.1,
        )
        system = await JobSystem.open(settings)
        try:
            assert system.redis_in_use
            proxy.refuse(True, drop_existing=True)
            # The pooled connection was reset: that add may have reached Redis (held);
            # the refused reconnects that follow open the gate.
            ref = await system.helpers.queue_order_confirmation_email("o1", "u1")
            assert ref.store in {"outbox", "local"}
            await eventually(lambda: not system.redis_in_use, 10)
            await _policy(private_redis.url, "allkeys-lru")
            proxy.refuse(False)
            # The probe reaches Redis again, reads the policy and keeps the gate open.
            await eventually(lambda: system.gate is not None and system.gate.policy is not None, 10)
            health = await system.monitor.health()
            assert not system.redis_in_use
            assert health["status"] == "degraded"
            codes = {problem["code"] for problem in health["problems"]}
            assert {"redis_eviction_unsafe", "redis_unavailable"} <= codes
            assert (await system.helpers.queue_order_confirmation_email("o2", "u1")).store == (
                "local"
            )
            await _policy(private_redis.url, "noeviction")
            await eventually(lambda: system.redis_in_use, 10)
            # Back in use. The first add may run past its budget while the connection is
            # re-made (then it is held and resolved into Redis); none goes local.
            stores = []
            for n in range(50):
                ref = await system.helpers.queue_order_confirmation_email(f"o{n + 3}", "u1")
                stores.append(ref.store)
                if ref.store == "redis":
                    break
            assert stores[-1] == "redis" and "local" not in stores, stores
            await eventually(lambda: _no_held(system), 10)
            # Nothing about Redis is left; the jobs just queued wait for a worker.
            problems = (await system.monitor.health())["problems"]
            assert {p["code"] for p in problems} <= {"queue_without_worker"}, problems
        finally:
            await system.close()


async def test_unsafe_policy_is_a_health_problem(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    await _policy(private_redis.url, "allkeys-lru")
    system = await JobSystem.open(
        Settings(_env_file=None, data_dir=tmp_path, redis_url=private_redis.url)
    )
    try:
        assert system.redis_in_use  # not required: used, but reported
        health = await system.monitor.health()
        assert health["status"] == "degraded"
        assert health["stores"]["redis"]["eviction_safe"] is False
        (problem,) = health["problems"]
        assert problem["code"] == "redis_eviction_unsafe"
        assert problem["severity"] == "critical"
        assert "noeviction" in problem["message"]
        assert "ils_redis_eviction_unsafe 1.0" in (await _scrape(system)).decode()
    finally:
        await system.close()


async def _no_held(system: JobSystem) -> bool:
    return (await system.producer.outbox.held()).count == 0


async def _scrape(system: JobSystem) -> bytes:
    await system.metrics.refresh(system.monitor)
    return system.metrics.render()
