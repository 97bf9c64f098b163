"""Celery on its Redis transport: ``task.delay(...)``, and ``celery worker --concurrency 10``
(the default prefork pool: the job sleeps in one of ten child processes). No result
backend, so nothing is stored per job beyond the message.

The producer takes a fresh app and connection pool at each ``open``: kombu remembers
per connection which queues it declared, and the harness empties the database between
measurements, bindings included.
"""

from __future__ import annotations

import kombu.pools
from bench.peers.common import BIN, CONCURRENCY, URL, Peer, queue_name, sync_client, work_sync
from celery import Celery


def make_app() -> Celery:
    app = Celery("peers", broker=URL, set_as_current=False)
    app.conf.task_default_queue = queue_name("celery")
    app.conf.broker_connection_retry_on_startup = True
    return app


def run_job(token: str, ms: int) -> None:
    work_sync(sync_client(), token, ms)


JOB = "bench.peers.celery_peer.job"
#: The worker's app (``celery -A bench.peers.celery_peer``).
app = make_app()
job = app.task(name=JOB)(run_job)


class Producer(Peer):
    name = "Celery"
    distribution = "celery"
    sync = True
    worker_note = "prefork pool, `--concurrency 10`"

    async def open(self) -> None:
        self.app = make_app()
        self.job = self.app.task(name=JOB)(run_job)

    async def close(self) -> None:
        self.app.close()
        kombu.pools.reset()

    def add_sync(self, token: str, ms: int) -> None:
        self.job.delay(token, ms)

    def worker_command(self) -> list[str]:
        return [
            str(BIN / "celery"),
            "-A",
            "bench.peers.celery_peer",
            "worker",
            "--concurrency",
            str(CONCURRENCY),
            "--loglevel",
            "WARNING",
        ]
