"""Redis over TLS with a client certificate: jobs are added, run and finished there.

The server listens on TLS only and demands a certificate of the test CA, so every
client of the job system (producers, workers, the blocking fetch, the gate's probe,
the event bus) must be made from the one connection description to get through.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.model import JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.stores.redis.connect import async_client
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.redis_settings import RedisConnection, RedisTls
from ils.settings import Settings
from tests.deploy.checks import signal_round_trip
from tests.deploy.conftest import TlsRedis
from tests.deploy.servers import make_certificates
from tests.faults.wait import eventually
from tests.support.busy_loop import hold_the_loop_soon

pytestmark = [pytest.mark.redis]

FAST = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "stalled_interval_ms": 500}


def _settings(tmp_path: Path, server: TlsRedis, shape: str) -> Settings:
    certs = server.certificates
    tls: dict[str, Any] = {
        "redis_tls_ca_file": certs.ca,
        "redis_tls_cert_file": certs.client_cert,
        "redis_tls_key_file": certs.client_key,
    }
    where: dict[str, Any] = (
        {"redis_url": server.url}
        if shape == "url"
        else {"redis_host": "127.0.0.1", "redis_port": server.port, "redis_tls": True}
    )
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        queues={"email": FAST},
        local_poll_interval_ms=20,
        redis_probe_interval_s=0.2,
        # The first add loads BullMQ's scripts; over TLS that can pass the 25 ms budget
        # and the job would be held for a moment (still ending in Redis). Not the point here.
        redis_enqueue_timeout_ms=5000,
        **where,
        **tls,
    )


@pytest.mark.parametrize("shape", ["url", "host"])
async def test_job_runs_over_tls_with_a_client_certificate(
    tmp_path: Path, tls_redis: TlsRedis, shape: str
) -> None:
    system = await JobSystem.open(_settings(tmp_path, tls_redis, shape))
    stop = asyncio.Event()
    done: list[str] = []

    async def handler(payload: Any, ctx: JobContext) -> dict[str, str]:
        done.append(ctx.job_id)
        return {"over": "tls"}

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderConfirmationEmail, handler)
    workers = asyncio.create_task(run_workers(system, ["email"], registry, stop=stop))
    try:
        assert system.redis_in_use  # the gate's probe got through TLS too
        ref = await system.helpers.queue_order_confirmation_email("ord-tls", "u1")
        assert ref.store == "redis"

        async def completed() -> bool:
            assert system.redis is not None
            record = await system.redis.get_job("email", ref.job_id)
            return record is not None and record.state is JobState.COMPLETED

        await eventually(completed, timeout=10)
        assert done == [ref.job_id]
        other = async_client(tls_redis.connection(), connect_timeout_s=2, socket_timeout_s=2)
        try:
            await signal_round_trip(system, other)
        finally:
            await other.aclose()
    finally:
        stop.set()
        await workers
        await system.close()


async def test_server_refuses_a_client_without_certificate(tls_redis: TlsRedis) -> None:
    anonymous = async_client(
        tls_redis.connection(client_cert=False), connect_timeout_s=2, socket_timeout_s=2
    )
    try:
        with pytest.raises((redis.ConnectionError, OSError)):
            await anonymous.ping()
    finally:
        await anonymous.aclose()


async def test_client_refuses_a_server_of_another_ca(tmp_path: Path, tls_redis: TlsRedis) -> None:
    other = make_certificates(tmp_path / "other-pki")
    certs = tls_redis.certificates
    tls = RedisTls(ca_file=other.ca, cert_file=certs.client_cert, key_file=certs.client_key)
    connection = RedisConnection(url=tls_redis.url, tls=tls)
    client = async_client(connection, connect_timeout_s=2, socket_timeout_s=2)
    try:
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            await client.ping()
    finally:
        await client.aclose()


async def test_a_tls_connect_the_loop_held_up_still_gets_through(tls_redis: TlsRedis) -> None:
    """The TLS handshake runs under the connect timeout too; a loop held past it must not
    fail the connect (``tests/jobs/test_redis_connect.py``)."""
    client = async_client(tls_redis.connection(), connect_timeout_s=0.2, socket_timeout_s=5)
    try:
        hold_the_loop_soon(0.4)
        assert await client.ping()
    finally:
        await client.aclose()
