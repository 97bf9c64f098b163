"""RQ: ``queue.enqueue(job, ...)`` and ``queue.enqueue_many(...)``, and ``rq worker-pool
-n 10`` (ten workers, each forking a work horse per job, RQ's default)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.peers.common import BIN, CONCURRENCY, URL, Item, Peer, queue_name, work_sync
from redis import Redis
from rq import Queue, get_current_job

NAME = queue_name("rq")


def job(token: str, ms: int) -> None:
    current = get_current_job()
    assert current is not None
    work_sync(current.connection, token, ms)


class Producer(Peer):
    name = "RQ"
    distribution = "rq"
    sync = True
    bulk = True
    worker_note = "`rq worker-pool -n 10` (a forked work horse per job)"

    async def open(self) -> None:
        self.connection = Redis.from_url(URL)
        self.queue = Queue(NAME, connection=self.connection)

    async def close(self) -> None:
        self.connection.close()

    def add_sync(self, token: str, ms: int) -> None:
        self.queue.enqueue(job, token, ms)

    def add_bulk_sync(self, items: Sequence[Item]) -> None:
        self.queue.enqueue_many([Queue.prepare_data(job, (token, ms)) for token, ms in items])

    def worker_command(self) -> list[str]:
        return [str(BIN / "rq"), "worker-pool", "-n", str(CONCURRENCY), "-u", URL, "-q", NAME]
