"""arq: ``pool.enqueue_job("job", ...)``, and a worker of ``WorkerSettings`` (``max_jobs =
10``) run by ``arq.run_worker`` in ``python -m bench.peers.arq_peer``: what the ``arq``
command does, less its INFO line per job (every worker here logs warnings only). The job
records through the worker's own ``ctx["redis"]``."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from arq import create_pool, run_worker
from arq.connections import RedisSettings
from bench.peers.common import CONCURRENCY, DONE, URL, Peer, queue_name, record

NAME = queue_name("arq")


async def job(ctx: dict[str, Any], token: str, ms: int) -> None:
    start = time.monotonic()
    if ms:
        await asyncio.sleep(ms / 1000)
    end = time.monotonic()
    await ctx["redis"].rpush(DONE, record(token, start, end))


class WorkerSettings:
    functions = [job]
    redis_settings = RedisSettings.from_dsn(URL)
    queue_name = NAME
    max_jobs = CONCURRENCY


class Producer(Peer):
    name = "arq"
    distribution = "arq"
    worker_note = "1 worker process, `max_jobs = 10`"

    async def open(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(URL), default_queue_name=NAME)

    async def close(self) -> None:
        await self.pool.aclose()

    async def add(self, token: str, ms: int) -> None:
        await self.pool.enqueue_job("job", token, ms)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "bench.peers.arq_peer"]


if __name__ == "__main__":
    run_worker(WorkerSettings)
