"""SAQ: ``queue.enqueue("job", ...)``, and ``saq bench.peers.saq_peer.settings``
(one worker process, concurrency 10)."""

from __future__ import annotations

from typing import Any

from bench.peers.common import BIN, CONCURRENCY, URL, Peer, async_client, queue_name, work_async
from saq import Queue

NAME = queue_name("saq")


async def job(ctx: dict[str, Any], *, token: str, ms: int) -> None:
    await work_async(async_client(), token, ms)


settings = {
    "queue": Queue.from_url(URL, name=NAME),
    "functions": [job],
    "concurrency": CONCURRENCY,
}


class Producer(Peer):
    name = "SAQ"
    distribution = "saq"
    worker_note = "1 worker process, concurrency 10"

    async def open(self) -> None:
        self.queue = Queue.from_url(URL, name=NAME)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def add(self, token: str, ms: int) -> None:
        await self.queue.enqueue("job", token=token, ms=ms)

    def worker_command(self) -> list[str]:
        return [str(BIN / "saq"), "bench.peers.saq_peer.settings", "--workers", "1", "--quiet"]
