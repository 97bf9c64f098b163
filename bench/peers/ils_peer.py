"""ILS: jobs queued through ``system.helpers``, run by ``run_workers`` as ``ils worker`` does.

The producer is a :class:`JobSystem` in Redis mode; the worker process (``python -m
bench.peers.ils_peer``) opens its own, registers one handler for the order
confirmation e-mail's payload and runs :func:`run_workers` until SIGTERM, like
``ils worker --queues email``. The e-mail queue gets concurrency 10 and no rate limit
(``ILS_QUEUES__EMAIL__...``); the payload carries the token as ``orderId`` and the
sleep as ``userId`` (``ms50``). Both processes share one SQLite directory
(``PEERS_ILS_DATA``), as an application's web and worker processes share its database.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.peers.common import (
    CONCURRENCY,
    URL,
    Item,
    Peer,
    async_client,
    queue_name,
    work_async,
)

from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.system import JobSystem
from ils.jobs.worker_context import WorkerContext
from ils.jobs.worker_process import build_registry, install_signal_handlers, run_workers
from ils.settings import Settings


def settings() -> Settings:
    return Settings(
        data_dir=Path(os.environ["PEERS_ILS_DATA"]),
        redis_url=URL,
        redis_prefix=queue_name("ils"),
        queues={"email": {"concurrency": CONCURRENCY, "rate_limit_max": 0}},
    )


class Producer(Peer):
    name = "ILS"
    distribution = "ils"
    worker_note = "`run_workers` in its own process, e-mail queue at concurrency 10"
    bulk = True

    async def open(self) -> None:
        self.system = await JobSystem.open(settings())

    async def close(self) -> None:
        await self.system.close()

    async def add(self, token: str, ms: int) -> None:
        await self.system.helpers.queue_order_confirmation_email(token, f"ms{ms}")

    async def add_bulk(self, items: Sequence[Item]) -> None:
        # ``queue_many`` as an application's batch (a schedule's fan-out) uses it: the
        # rows are the fields the one-by-one helper takes.
        rows: list[dict[str, object]] = [
            {"order_id": token, "user_id": f"ms{ms}"} for token, ms in items
        ]
        await self.system.helpers.queue_many("email", "order-confirmation", rows)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "bench.peers.ils_peer"]


async def handle(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
    await work_async(async_client(), payload.order_id, int(payload.user_id[2:]))


def register(registry: HandlerRegistry, context: WorkerContext) -> None:
    registry.register(OrderConfirmationEmail, handle)


async def serve() -> Any:
    system = await JobSystem.open(settings())
    try:
        registry = build_registry(system, [register])
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_workers(system, ["email"], registry, stop=stop)
    finally:
        await async_client().aclose()
        await system.close()


if __name__ == "__main__":
    asyncio.run(serve())
