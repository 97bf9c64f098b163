"""dramatiq with its ``RedisBroker``: ``actor.send(...)``, and ``dramatiq --processes 1
--threads 10`` (a sync actor: the job sleeps in one of the worker's threads)."""

from __future__ import annotations

import dramatiq
from bench.peers.common import BIN, CONCURRENCY, URL, Peer, queue_name, sync_client, work_sync
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=URL, namespace=queue_name("dramatiq"))
dramatiq.set_broker(broker)


@dramatiq.actor
def job(token: str, ms: int) -> None:
    work_sync(sync_client(), token, ms)


class Producer(Peer):
    name = "dramatiq"
    distribution = "dramatiq"
    sync = True
    worker_note = "`RedisBroker`, 1 process, 10 threads"

    def add_sync(self, token: str, ms: int) -> None:
        job.send(token, ms)

    def worker_command(self) -> list[str]:
        return [
            str(BIN / "dramatiq"),
            "bench.peers.dramatiq_peer",
            "--processes",
            "1",
            "--threads",
            str(CONCURRENCY),
        ]
