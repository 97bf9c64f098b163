"""Redis configured but unusable: enqueue stays fast and durable; policy is checked."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ils.errors import ConfigurationError, PayloadTooLargeError
from ils.jobs.model import JobOptions
from ils.jobs.payloads.email import GeneralNotificationEmail
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import RedisServer, free_port


async def test_redis_down_at_start_uses_local_store(tmp_path: Path) -> None:
    started = time.perf_counter()
    system = await JobSystem.open(
        Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    )
    try:
        assert time.perf_counter() - started < 5
        assert system.mode == "redis"
        assert not system.redis_in_use
        durations = []
        for i in range(20):
            t0 = time.perf_counter()
            ref = await system.helpers.queue_order_confirmation_email(f"o{i}", "u")
            durations.append(time.perf_counter() - t0)
            assert ref.store == "local"
        assert max(durations) < 0.05
        stats = await system.monitor.stats()
        assert stats["redis"] is False
        assert stats["mode"] == "redis"
        assert stats["email"]["waiting"] == 20
        health = await system.monitor.health()
        assert health["status"] == "degraded"
        assert health["stores"]["redis"]["reachable"] is False
        assert health["stores"]["local"]["reachable"] is True
        assert health["queues"]["email"]["counts"]["waiting"] == 20
        assert health["queues"]["email"]["oldest_waiting_age_s"] >= 0
    finally:
        await system.close()


async def test_payload_over_limit_is_refused(tmp_path: Path) -> None:
    system = await JobSystem.open(Settings(data_dir=tmp_path, max_payload_bytes=1024))
    try:
        payload = GeneralNotificationEmail(user_id="u1", subject="s", content="x" * 2000)
        with pytest.raises(PayloadTooLargeError) as caught:
            await system.producer.enqueue("email", "general-notification", payload, JobOptions())
        assert "xxxx" not in str(caught.value)
        assert (await system.monitor.counts("email"))["waiting"] == 0
    finally:
        await system.close()


def _lru_redis(tmp_path: Path) -> RedisServer:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(str(directory), free_port(), "--maxmemory-policy", "allkeys-lru")
    server.start()
    return server


async def test_eviction_policy_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = _lru_redis(tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            system = await JobSystem.open(Settings(data_dir=tmp_path, redis_url=server.url))
        await system.close()
        assert any(
            "allkeys-lru" in r.getMessage() and "noeviction" in r.getMessage()
            for r in caplog.records
        )
    finally:
        server.stop()


async def test_eviction_policy_refused_when_required(tmp_path: Path) -> None:
    server = _lru_redis(tmp_path)
    try:
        with pytest.raises(ConfigurationError, match="noeviction"):
            await JobSystem.open(
                Settings(data_dir=tmp_path, redis_url=server.url, redis_require_noeviction=True)
            )
    finally:
        server.stop()


async def test_health_ok_in_both_modes(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    for extra in ({}, {"redis_url": redis_url, "redis_prefix": redis_prefix}):
        system = await JobSystem.open(Settings(data_dir=tmp_path, **extra))  # type: ignore[arg-type]
        try:
            health = await system.monitor.health()
            assert health["status"] == "ok"
            assert health["mode"] == ("redis" if extra else "local")
            if extra:
                assert health["stores"]["redis"]["eviction_safe"] is True
                assert health["stores"]["redis"]["latency_ms"] >= 0
        finally:
            await system.close()
