"""taskiq with taskiq-redis's ``RedisStreamBroker`` (the broker with acknowledgements):
``task.kiq(...)``, and ``taskiq worker --workers 1 --max-async-tasks 10``."""

from __future__ import annotations

from bench.peers.common import BIN, CONCURRENCY, URL, Peer, async_client, queue_name, work_async
from taskiq_redis import RedisStreamBroker

broker = RedisStreamBroker(url=URL, queue_name=queue_name("taskiq"))


@broker.task
async def job(token: str, ms: int) -> None:
    await work_async(async_client(), token, ms)


class Producer(Peer):
    name = "taskiq"
    distribution = "taskiq"
    worker_note = "`RedisStreamBroker`, 1 worker process, `--max-async-tasks 10`"

    async def open(self) -> None:
        # Declares the consumer group too: a backlog queued before the worker starts
        # is then delivered to it.
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def add(self, token: str, ms: int) -> None:
        await job.kiq(token, ms)

    def worker_command(self) -> list[str]:
        return [
            str(BIN / "taskiq"),
            "worker",
            "bench.peers.taskiq_peer:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            str(CONCURRENCY),
            "--log-level",
            "WARNING",
        ]
