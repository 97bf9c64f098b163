"""Node BullMQ (what the platform's TypeScript service runs) and our Python side share
queues in both directions: names, data and priority survive."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.model import JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import _missing, delete_prefix

pytestmark = pytest.mark.node
NODE_DIR = Path(__file__).resolve().parents[1] / "interop" / "node"


@pytest.fixture(scope="session")
def node_peer() -> Path:
    """The Node BullMQ peer, its packages installed from the lock file on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing("Node.js and npm")
    if not (NODE_DIR / "node_modules" / "bullmq").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_DIR


async def node(script: str, *args: str) -> Any:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_DIR / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.fixture
async def system(redis_url: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[JobSystem]:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, redis_prefix=redis_prefix)
    opened = await JobSystem.open(settings)
    yield opened
    await opened.close()
    await delete_prefix(redis_url, redis_prefix)


async def test_job_added_by_node_is_processed_by_our_worker(
    node_peer: Path, system: JobSystem, redis_url: str, redis_prefix: str
) -> None:
    data = {
        "type": "order-confirmation",
        "orderId": "8f14e45f-ceea-467f-a8f8-3c5d9e1a2b3c",
        "userId": "42",
    }
    added = await node(
        "add_job.mjs",
        redis_url,
        redis_prefix,
        "emails",
        "order-confirmation",
        json.dumps(data),
        "1",
    )
    registry = HandlerRegistry(system.job_types)
    received: list[Any] = []

    async def handler(payload: Any, ctx: JobContext) -> dict[str, str]:
        received.append((payload, ctx.job_id))
        return {"processedBy": "python"}

    registry.register(OrderConfirmationEmail, handler)
    runner = Runner(system.stores(), [system.catalogue["email"]], registry)
    runner.start()
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end and not received:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        await runner.stop(5)
    assert received, "our worker never saw the Node job"
    payload, job_id = received[0]
    assert job_id == added["id"]
    assert payload.order_id == data["orderId"]
    assert payload.user_id == "42"
    assert system.redis is not None
    record = await system.redis.get_job("email", added["id"])
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == {"processedBy": "python"}


async def test_job_added_by_our_helper_is_read_by_node(
    node_peer: Path, system: JobSystem, redis_url: str, redis_prefix: str
) -> None:
    ref = await system.helpers.queue_shipment_notification_email(
        "ord-77", "usr-5", "1Z999AA1", "UPS"
    )
    assert ref.store == "redis"
    seen = await node("consume_one.mjs", redis_url, redis_prefix, "emails", "1", "15000")
    assert len(seen) == 1
    job = seen[0]
    assert job["id"] == ref.job_id
    assert job["name"] == "order-shipment"
    assert job["data"] == {
        "type": "order-shipment",
        "orderId": "ord-77",
        "userId": "usr-5",
        "trackingNumber": "1Z999AA1",
        "carrier": "UPS",
    }
    assert job["priority"] == 2
    assert job["attempts"] == 3
    assert system.redis is not None
    record = await system.redis.get_job("email", ref.job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == {"processedBy": "node"}
