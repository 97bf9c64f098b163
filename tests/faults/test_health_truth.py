"""Health answers while Redis goes away: degraded with the reason, never an error.

Reported: ``/api/queue/health`` answered 503 for about 1.5 s as Redis went down (the
report read Redis's counts before the gate had noticed, and the store's error became
the response), and the panel kept the dead Redis's memory figures. The report now
reads each store on its own and says what it could not read.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.faults.proxy import FaultProxy
from tests.faults.redis_server import PrivateRedis
from tests.faults.wait import eventually

pytestmark = pytest.mark.redis


async def test_health_answers_degraded_the_moment_redis_stops_answering(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    with FaultProxy(private_redis.url) as proxy:
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            redis_url=proxy.url,
            # The gate would notice in a minute: the report must not wait for it.
            redis_probe_interval_s=60,
            redis_connect_timeout_ms=200,
        )
        system = await JobSystem.open(settings)
        try:
            await system.helpers.queue_order_confirmation_email("o1", "u1")
            before = await system.monitor.health()
            assert before["stores"]["redis"]["reachable"] is True
            assert "used_memory_human" in before["stores"]["redis"]
            assert before["queues"]["email"]["counts"]["waiting"] == 1

            proxy.refuse(True, drop_existing=True)
            assert system.redis_in_use  # the gate has not noticed yet
            health = await system.monitor.health()
            assert health["status"] == "degraded"
            assert health["stores"]["redis"]["reachable"] is False
            assert "used_memory_human" not in health["stores"]["redis"]
            assert "redis_unavailable" in {p["code"] for p in health["problems"]}
            # The local store still answers for its own jobs (none here).
            assert health["queues"]["email"]["counts"]["waiting"] == 0

            proxy.refuse(False)
            await eventually(lambda: _redis_reachable(system), 10)
        finally:
            await system.close()


async def _redis_reachable(system: JobSystem) -> bool:
    return bool((await system.monitor.health())["stores"]["redis"]["reachable"])


async def test_readiness_follows_the_app_database_and_liveness_always_answers(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL behind a proxy the test controls: refusing it makes the process not
    ready (503) while it stays alive (200), and healing it makes it ready again."""
    from ils.web.app import create_app

    url = make_url(pg_url)
    with FaultProxy(f"{url.host}:{url.port or 5432}") as proxy:
        host, port = proxy.address
        through_proxy = url.set(host=host, port=port).render_as_string(hide_password=False)
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            database_url=through_proxy,
            start_workers=False,
            secret_key="k" * 48,
        )
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            live = await client.get("/healthz/live")
            assert (live.status_code, live.json()) == (200, {"status": "alive"})
            ready = await client.get("/healthz/ready")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            proxy.refuse(True, drop_existing=True)
            ready = await client.get("/healthz/ready")
            assert (ready.status_code, ready.json()) == (503, {"status": "not ready"})
            assert (await client.get("/healthz/live")).status_code == 200
            proxy.refuse(False)
            await eventually(lambda: _ready(client), 10)


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz/ready")).status_code == 200
