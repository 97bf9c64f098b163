"""Fairness between companies on the ai queue: another company's wait behind a flood.

Company A wants 200 demand forecasts and sends them as fast as the API takes them (a
refused one is sent again after the next job starts, as a client honouring 429
would); ``--flooders N`` makes N companies do so. A little later company B gets its
08:00 briefing (queued as the schedules queue it), asks a chat question and starts one
run. The queue then starts one job per step, in the store's own order (``fetch``, what
workers do), and every step stands for the ``ai`` queue's rate (10 a minute: 6 s).
Printed for each of B's jobs: the jobs started ahead of it and that time, with the
policy (``ILS_FAIRNESS__ENABLED``, the default) and without it (the plain FIFO of
before), and their ratio; plus what the quota check costs an enqueue.

Runs on the local store (SQLite, with a manual clock moved 6 s a step) and, with
``--redis URL``, on Redis (a throw-away key prefix, deleted after).

    .venv/bin/python bench/fairness.py [--flood 200] [--flooders 1] [--b-after 5]
        [--cost-samples 300] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from redis.asyncio import Redis

from ils.clock import ManualClock
from ils.jobs.fairness import QuotaExceededError
from ils.jobs.model import JobRef
from ils.jobs.stores.base import JobStore
from ils.jobs.system import JobSystem
from ils.settings import Settings

#: One step: the ai queue starts 10 jobs a minute.
STEP_MS: Final = 6_000
A, B = "bench-company-a", "bench-company-b"
B_JOBS: Final = ("briefing", "chat", "run")


@dataclass
class Run:
    """One run of the scenario: B's jobs' waits (in jobs started ahead) and the costs."""

    waits: dict[str, int] = field(default_factory=dict)
    a_accepted: int = 0
    a_refused: int = 0
    enqueue_ms: list[float] = field(default_factory=list)


async def timed(run: Run, enqueue: Any) -> JobRef | None:
    started = time.perf_counter()
    try:
        return await enqueue  # type: ignore[no-any-return]
    except QuotaExceededError:
        run.a_refused += 1
        return None
    finally:
        run.enqueue_ms.append((time.perf_counter() - started) * 1000)


async def scenario(system: JobSystem, store: JobStore, args: argparse.Namespace) -> Run:
    run = Run()
    helpers = system.helpers
    flooders = [f"{A}-{n}" for n in range(args.flooders)]
    wanted = dict.fromkeys(flooders, args.flood)
    b_refs: dict[str, JobRef] = {}
    step = 0
    while len(run.waits) < len(B_JOBS):
        for company in flooders:
            while wanted[company] > 0:  # each flooder sends until refused
                ref = await timed(run, helpers.on_demand("bulk").queue_demand_forecast(company))
                if ref is None:
                    break
                run.a_accepted += 1
                wanted[company] -= 1
        if step == args.b_after:
            b_refs["briefing"] = await helpers.queue_daily_briefing(B, date(2026, 12, 5))
            b_refs["chat"] = await helpers.on_demand("interactive").queue_chat_response(
                "user-b", B, "conv-b", "msg-b"
            )
            b_refs["run"] = await helpers.on_demand("bulk").queue_demand_forecast(B)
            queued_at = dict.fromkeys(b_refs, step)
        fetched = await store.fetch("ai", "bench")
        if fetched.job is not None:
            for kind, ref in b_refs.items():
                if ref.job_id == fetched.job.id:
                    run.waits[kind] = step - queued_at[kind]
            await store.complete("ai", fetched.job, None)
        if isinstance(system.clock, ManualClock):
            system.clock.advance(STEP_MS)
        step += 1
    # What the check costs: A asks again and again (refused with the policy, queued
    # without it), next to what the queue holds now.
    run.enqueue_ms.clear()
    refused = run.a_refused
    for _ in range(args.cost_samples):
        await timed(run, helpers.on_demand("bulk").queue_demand_forecast(flooders[0]))
    run.a_refused = refused
    return run


async def local_run(args: argparse.Namespace, enabled: bool) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp),
            redis_url=None,
            queues={"ai": {"rate_limit_max": 0}},
            fairness={"enabled": enabled},
        )
        system = await JobSystem.open(settings, clock=ManualClock())
        try:
            return await scenario(system, system.local, args)
        finally:
            await system.close()


async def redis_run(args: argparse.Namespace, enabled: bool) -> Run:
    prefix = f"bench-fair-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp),
            redis_url=args.redis,
            redis_prefix=prefix,
            queues={"ai": {"rate_limit_max": 0}},
            fairness={"enabled": enabled},
        )
        system = await JobSystem.open(settings)
        try:
            assert system.gate is not None
            assert system.redis is not None
            if not await system.gate.check():
                raise SystemExit(f"redis at {args.redis} does not answer")
            return await scenario(system, system.redis, args)
        finally:
            await system.close()
            client = Redis.from_url(args.redis)
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


def report(store: str, fair: Run, fifo: Run) -> None:
    print(
        f"\n{store}: by the time B's jobs had started, the flooders had {fair.a_accepted} "
        f"runs queued and {fair.a_refused} refused (without the policy: {fifo.a_accepted})"
    )
    header = ("B's job", "ahead, fair", "ahead, FIFO", "wait fair", "wait FIFO", "fair/FIFO")
    print("  {:<10} {:>12} {:>12} {:>10} {:>10} {:>10}".format(*header))
    for kind in B_JOBS:
        a, b = fair.waits[kind], fifo.waits[kind]
        ratio = f"{a / b:.3f}" if b else "-"
        print(
            f"  {kind:<10} {a:>12} {b:>12} {a * STEP_MS / 1000:>9.0f}s "
            f"{b * STEP_MS / 1000:>9.0f}s {ratio:>10}"
        )
    costs, plain = fair.enqueue_ms, fifo.enqueue_ms
    print(
        f"  an enqueue with the quota check: p50 {statistics.median(costs):.2f} ms, "
        f"p95 {percentile(costs, 0.95):.2f} ms; without: p50 {statistics.median(plain):.2f} "
        f"ms, p95 {percentile(plain, 0.95):.2f} ms ({len(costs)} enqueues each)"
    )


async def amain(args: argparse.Namespace) -> None:
    print(
        f"{args.flooders} companies flood {args.flood} runs each; B's jobs come "
        f"{args.b_after} steps later; "
        f"one step = one job started = {STEP_MS / 1000:.0f} s at 10 a minute"
    )
    report("local store (SQLite)", await local_run(args, True), await local_run(args, False))
    if args.redis:
        report("Redis", await redis_run(args, True), await redis_run(args, False))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=200, help="runs each flooder wants")
    parser.add_argument("--flooders", type=int, default=1, help="companies flooding")
    parser.add_argument("--b-after", type=int, default=5, help="steps before B's jobs")
    parser.add_argument("--redis", default=None, help="also on this Redis (a URL)")
    parser.add_argument("--cost-samples", type=int, default=300, help="enqueues timed")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
