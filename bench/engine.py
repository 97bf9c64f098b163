"""Job engine figures for Redis and local mode, against plain ``bullmq`` used directly.

Prints, per mode: enqueue latency p50/p99 (one job at a time through the helpers),
no-op jobs per second in one worker process (a backlog drained by the runner), and
pickup latency p50/p99 (enqueue to handler start, worker idle). The same figures for
plain bullmq (``Queue.add`` and ``bullmq.Worker``) are measured in the same run on the
same Redis, so the cost of our layer shows as ratios.

A burst line: ``--jobs`` enqueues from 50 concurrent tasks (``--lanes``), jobs/s for ILS
and plain bullmq, and where ILS's jobs went: straight into Redis, held (the add ran past
``ILS_REDIS_ENQUEUE_TIMEOUT_MS`` and was resolved into Redis by id) or to the local
store (only when Redis is known to be down: with Redis healthy this must be 0).

    .venv/bin/python bench/engine.py [--jobs 2000] [--pickups 300] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
DATA = {"type": "order-confirmation", "orderId": "ord-1", "userId": "usr-1"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float]) -> str:
    return f"p50 {1000 * pct(values, 0.5):7.3f} ms  p99 {1000 * pct(values, 0.99):7.3f} ms"


async def timed(n: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return samples


async def wait_count(counter: list[int], target: int, limit_s: float = 600) -> None:
    end = time.monotonic() + limit_s
    while counter[0] < target:
        if time.monotonic() > end:
            raise TimeoutError(f"only {counter[0]} of {target} jobs done")
        await asyncio.sleep(0.002)


# -- our layer --------------------------------------------------------------------


async def bench_ours(settings: Settings, jobs: int, pickups: int) -> dict[str, Any]:
    system = await JobSystem.open(settings)
    helpers = system.helpers
    try:
        enqueue = await timed(jobs, lambda i: helpers.queue_order_confirmation_email(f"o{i}", "u"))
        done = [0]
        starts: dict[str, float] = {}

        async def noop(payload: Any, ctx: JobContext) -> None:
            starts[ctx.job_id] = time.perf_counter()
            done[0] += 1

        registry = HandlerRegistry(system.job_types)
        registry.register(OrderConfirmationEmail, noop)
        runner = Runner(system.stores(), [system.catalogue["email"]], registry)
        t0 = time.perf_counter()
        runner.start()
        await wait_count(done, jobs)
        throughput = jobs / (time.perf_counter() - t0)
        pickup = []
        for i in range(pickups):
            sent = time.perf_counter()
            ref = await helpers.queue_order_confirmation_email(f"p{i}", "u")
            await wait_count(done, jobs + i + 1)
            pickup.append(starts[ref.job_id] - sent)
            await asyncio.sleep(0.002)
        await runner.stop(5)
        return {"enqueue": enqueue, "throughput": throughput, "pickup": pickup}
    finally:
        await system.close()


async def burst_ours(settings: Settings, jobs: int, lanes: int) -> dict[str, Any]:
    """``jobs`` enqueues from ``lanes`` concurrent tasks; jobs/s and the stores used."""
    system = await JobSystem.open(settings)
    try:
        stores: list[str] = []
        per_lane = jobs // lanes

        async def lane(n: int) -> None:
            for i in range(per_lane):
                ref = await system.helpers.queue_order_confirmation_email(f"b{n}-{i}", "u")
                stores.append(ref.store)

        t0 = time.perf_counter()
        await asyncio.gather(*(lane(n) for n in range(lanes)))
        rate = len(stores) / (time.perf_counter() - t0)
        outbox = system.producer.outbox
        while (await outbox.held()).count:  # settle the held ones before counting
            await outbox.relay()
            await asyncio.sleep(0.05)
        resolved = (await outbox.held()).resolved
        return {
            "rate": rate,
            "total": len(stores),
            "redis": stores.count("redis"),
            "held": stores.count("outbox"),
            "local": stores.count("local"),
            "resolved": resolved,
        }
    finally:
        await system.close()


async def burst_plain(prefix: str, jobs: int, lanes: int) -> float:
    from bullmq import Queue

    queue = Queue("email", {"connection": REDIS_URL, "prefix": prefix})
    per_lane = jobs // lanes

    async def lane(n: int) -> None:
        for i in range(per_lane):
            await queue.add("order-confirmation", {**DATA, "orderId": f"b{n}-{i}"})

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(lane(n) for n in range(lanes)))
        return per_lane * lanes / (time.perf_counter() - t0)
    finally:
        await queue.close()


# -- plain bullmq -------------------------------------------------------------------


async def bench_plain(prefix: str, jobs: int, pickups: int, concurrency: int) -> dict[str, Any]:
    from bullmq import Queue, Worker

    opts = {
        "priority": 1,
        "attempts": 3,
        "backoff": {"type": "exponential", "delay": 5000},
        "removeOnComplete": {"age": 86400, "count": 1000},
        "removeOnFail": {"age": 604800, "count": 5000},
    }
    queue = Queue("emails", {"connection": REDIS_URL, "prefix": prefix})
    enqueue = await timed(
        jobs, lambda i: queue.add("order-confirmation", {**DATA, "orderId": f"o{i}"}, opts)
    )
    done = [0]
    starts: dict[str, float] = {}

    async def noop(job: Any, token: str) -> None:
        starts[job.id] = time.perf_counter()
        done[0] += 1

    t0 = time.perf_counter()
    worker = Worker(
        "emails", noop, {"connection": REDIS_URL, "prefix": prefix, "concurrency": concurrency}
    )
    await wait_count(done, jobs)
    throughput = jobs / (time.perf_counter() - t0)
    pickup = []
    for i in range(pickups):
        sent = time.perf_counter()
        job = await queue.add("order-confirmation", {**DATA, "orderId": f"p{i}"}, opts)
        await wait_count(done, jobs + i + 1)
        pickup.append(starts[job.id] - sent)
        await asyncio.sleep(0.002)
    await worker.close()
    await queue.close()
    return {"enqueue": enqueue, "throughput": throughput, "pickup": pickup}


async def drop_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def report(label: str, figures: dict[str, Any]) -> None:
    print(f"{label:<22} enqueue  {ms(figures['enqueue'])}")
    print(f"{'':<22} pickup   {ms(figures['pickup'])}")
    print(f"{'':<22} no-op jobs/s per worker process: {figures['throughput']:8.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--pickups", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--lanes", type=int, default=50)
    args = parser.parse_args()
    queue_opts = {"email": {"concurrency": args.concurrency, "rate_limit_max": 0}}
    print(f"jobs {args.jobs}, pickups {args.pickups}, concurrency {args.concurrency}\n")

    with tempfile.TemporaryDirectory() as tmp:
        local = await bench_ours(
            Settings(data_dir=Path(tmp), queues=queue_opts), args.jobs, args.pickups
        )
    report("ILS local (SQLite)", local)

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ours = await bench_ours(
                Settings(
                    data_dir=Path(tmp), queues=queue_opts, redis_url=REDIS_URL, redis_prefix=prefix
                ),
                args.jobs,
                args.pickups,
            )
        await drop_prefix(prefix)
        plain = await bench_plain(prefix, args.jobs, args.pickups, args.concurrency)
    finally:
        await drop_prefix(prefix)
    report("ILS Redis", ours)
    report("plain bullmq (Redis)", plain)
    print()
    print(
        f"throughput ratio plain/ILS: {plain['throughput'] / ours['throughput']:.2f}x "
        "(target: <= 1.25)"
    )
    ours_p99, plain_p99 = pct(ours["enqueue"], 0.99), pct(plain["enqueue"], 0.99)
    print(
        f"enqueue p99 ratio ILS/plain: {ours_p99 / plain_p99:.2f}x; "
        f"ILS enqueue p99 on Redis {1000 * ours_p99:.3f} ms (target: < 2 ms)"
    )
    pickup_ratio = statistics.median(ours["pickup"]) / statistics.median(plain["pickup"])
    print(f"pickup p50 ratio ILS/plain: {pickup_ratio:.2f}x")

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            burst = await burst_ours(
                Settings(
                    data_dir=Path(tmp), queues=queue_opts, redis_url=REDIS_URL, redis_prefix=prefix
                ),
                args.jobs,
                args.lanes,
            )
        await drop_prefix(prefix)
        plain_rate = await burst_plain(prefix, args.jobs, args.lanes)
    finally:
        await drop_prefix(prefix)
    total = burst["total"]
    print()
    print(
        f"{args.lanes}-lane burst: ILS {burst['rate']:.0f} jobs/s, plain bullmq "
        f"{plain_rate:.0f} jobs/s (ratio ILS/plain {burst['rate'] / plain_rate:.2f}x)"
    )
    print(
        f"  ILS jobs straight into Redis {100 * burst['redis'] / total:.1f} %, held then "
        f"resolved into Redis {100 * burst['held'] / total:.1f} % {burst['resolved']}, "
        f"local store {100 * burst['local'] / total:.1f} % (must be 0 with Redis healthy)"
    )


if __name__ == "__main__":
    asyncio.run(main())
