"""Plain bullmq: ``Queue.add`` / ``Queue.addBulk`` with default options, and a
``bullmq.Worker`` at concurrency 10 in its own process (``python -m bench.peers.bullmq_peer``)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

from bench.peers.common import CONCURRENCY, URL, Item, Peer, async_client, queue_name, work_async

NAME = queue_name("bullmq")


class Producer(Peer):
    name = "bullmq"
    distribution = "bullmq"
    bulk = True
    worker_note = "`bullmq.Worker`, concurrency 10"

    async def open(self) -> None:
        from bullmq import Queue

        self.queue = Queue(NAME, {"connection": URL})

    async def close(self) -> None:
        await self.queue.close()

    async def add(self, token: str, ms: int) -> None:
        await self.queue.add("job", {"token": token, "ms": ms})

    async def add_bulk(self, items: Sequence[Item]) -> None:
        await self.queue.addBulk(
            [{"name": "job", "data": {"token": token, "ms": ms}} for token, ms in items]
        )

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "bench.peers.bullmq_peer"]


async def process(job: Any, token: str) -> None:
    await work_async(async_client(), job.data["token"], job.data["ms"])


async def serve() -> None:
    from bullmq import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(NAME, process, {"connection": URL, "concurrency": CONCURRENCY})
    await stop.wait()
    await worker.close()
    await async_client().aclose()


if __name__ == "__main__":
    asyncio.run(serve())
