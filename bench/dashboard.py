"""The monitoring API and dashboard with 100,000 finished jobs in one queue.

Fills the ``pdf`` queue with ``--jobs`` finished jobs (finished over the last hour,
made for a handful of companies; one in ten failed, with a message naming the order,
so they fall into a few failure groups), starts the real server (``ils serve
--no-workers``) on that data, signs in as a platform admin and as a company admin,
and times each request the dashboard makes, ``--rounds`` times: the overview's
counts, health and per-minute charts, the workers view, the failure groups, the
latency charts (hour and day), the job list's first page and a deep page, a search,
and the dashboard's own HTML pages. Target: each under 300 ms p50 (a search is
reported, not judged).

    .venv/bin/python bench/dashboard.py [--jobs 100000] [--rounds 20] [--redis URL]

Local mode (SQLite) by default; ``--redis`` fills BullMQ's keys under a prefix of
its own (deleted at the end). Retention is raised for the ``pdf`` queue so the
jobs stay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from redis.asyncio import Redis
from sqlalchemy import insert

from ils.db.engine import create_engine, session_factory
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.heap import tune_garbage_collector
from ils.jobs.stores.local.schema import JobRow
from ils.jobs.system import JobSystem
from ils.settings import Settings
from serving import ils_serve, pct, server

PASSWORD = "bench-dashboard-password"  # noqa: S105 (a throwaway bench database)
TARGET_MS = 300.0
RETENTION = {"pdf": {"keep_completed_count": 1_000_000, "keep_completed_age_s": 86_400}}


async def seed_users(settings: Settings) -> list[str]:
    """Five labs, a platform admin in the first and a company admin in the second."""
    engine = create_engine(settings.effective_database_url)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    companies = [Company(kind=CompanyKind.LAB, name=f"Bench Lab {n}") for n in range(5)]
    try:
        async with session_factory(engine)() as session, session.begin():
            session.add_all(companies)
            await session.flush()
            for role, company in (
                (Role.PLATFORM_ADMIN, companies[0]),
                (Role.COMPANY_ADMIN, companies[1]),
            ):
                session.add(
                    User(
                        company_id=company.id,
                        email=f"{role.value}@bench.example",
                        name=role.value,
                        password_hash=hashed,
                        role=role,
                    )
                )
    finally:
        await engine.dispose()
    return [company.id for company in companies]


def job_payload(n: int) -> dict[str, Any]:
    return {"type": "order-sheet", "orderId": f"bench-order-{n:06d}"}


#: One job in ten fails, with one of these errors (each names the order: the failure
#: groups must mask it to group them).
FAILURES = (
    ("PermanentJobError", "order bench-order-{n:06d} has no lens data"),
    ("TimeoutError", "the printer service did not answer in 30 s for order {n}"),
    ("ValueError", "unknown frame material code {n} on order bench-order-{n:06d}"),
)


def failure(n: int) -> tuple[str, list[str]] | None:
    """``(failed reason, stack trace)`` when job ``n`` failed, else ``None``."""
    if n % 10:
        return None
    kind, text = FAILURES[(n // 10) % len(FAILURES)]
    message = text.format(n=n)
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/ils/workers/pdf/handlers.py", line 88, in order_sheet\n'
        "    raise " + kind + "(message)\n" + f"{kind}: {message}"
    )
    return message, [trace]


async def fill_local(settings: Settings, companies: list[str], count: int) -> None:
    """Finished jobs straight into the jobs table, in batches."""
    engine = create_engine(settings.effective_database_url)
    now = int(time.time() * 1000)
    try:
        async with engine.begin() as conn:
            for start in range(0, count, 5_000):
                rows = []
                for n in range(start, min(start + 5_000, count)):
                    finished = now - 3_600_000 + (n * 3_600_000) // count
                    failed = failure(n)
                    rows.append(
                        {
                            "id": uuid.uuid4().hex,
                            "queue": "pdf",
                            "name": "order-sheet",
                            "data": job_payload(n),
                            "state": "completed" if failed is None else "failed",
                            "failed_reason": None if failed is None else failed[0],
                            "priority": 2,
                            "attempts": 3,
                            "attempts_made": 1,
                            "attempts_started": 1,
                            "stalled_count": 0,
                            "backoff_delay_ms": 5_000,
                            "delay_ms": 0,
                            "run_at_ms": finished - 900,
                            "result": {"documentId": f"doc-{n}"} if failed is None else None,
                            "stacktrace": [] if failed is None else failed[1],
                            "created_at_ms": finished - 1_000,
                            "processed_at_ms": finished - 800,
                            "finished_at_ms": finished,
                            "company_id": companies[n % len(companies)],
                        }
                    )
                await conn.execute(insert(JobRow), rows)
    finally:
        await engine.dispose()


async def fill_redis(url: str, prefix: str, companies: list[str], count: int) -> None:
    """Finished BullMQ jobs: a hash per job and the completed or failed set, pipelined."""
    client = Redis.from_url(url)
    now = int(time.time() * 1000)
    base = f"{prefix}:pdfs"
    try:
        for start in range(0, count, 5_000):
            async with client.pipeline(transaction=False) as pipe:
                for n in range(start, min(start + 5_000, count)):
                    finished = now - 3_600_000 + (n * 3_600_000) // count
                    job_id = f"bench-{n}"
                    opts = {
                        "attempts": 3,
                        "backoff": {"type": "exponential", "delay": 5000},
                        "priority": 2,
                        "ilsCompanyId": companies[n % len(companies)],
                    }
                    fields: dict[str, Any] = {
                        "name": "order-sheet",
                        "data": json.dumps(job_payload(n)),
                        "opts": json.dumps(opts),
                        "timestamp": finished - 1_000,
                        "priority": 2,
                        "processedOn": finished - 800,
                        "finishedOn": finished,
                        "atm": 1,
                    }
                    failed = failure(n)
                    if failed is None:
                        fields["returnvalue"] = json.dumps({"documentId": f"doc-{n}"})
                    else:
                        fields["failedReason"] = failed[0]
                        fields["stacktrace"] = json.dumps(failed[1])
                    pipe.hset(f"{base}:{job_id}", mapping=fields)
                    finished_set = "completed" if failed is None else "failed"
                    pipe.zadd(f"{base}:{finished_set}", {job_id: finished})
                    # The company index RedisJobStore.add keeps beside BullMQ's keys.
                    pipe.zadd(f"{base}:ils:company:{opts['ilsCompanyId']}", {job_id: finished})
                await pipe.execute()
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        batch: list[Any] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=5_000):
            batch.append(key)
            if len(batch) >= 5_000:
                await client.delete(*batch)
                batch = []
        if batch:
            await client.delete(*batch)
    finally:
        await client.aclose()


async def signed_in(base: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    response = await client.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


async def timed(client: httpx.AsyncClient, path: str, rounds: int) -> tuple[list[float], int]:
    """Milliseconds per request (after one warm-up) and the last status."""
    status = (await client.get(path)).status_code
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get(path)
        times.append(1000 * (time.perf_counter() - started))
        status = response.status_code
    return times, status


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--redis", help="Redis URL (Redis mode); local mode without")
    args = parser.parse_args()
    prefix = f"bench-dash-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
        env.update(
            {"ILS_DATA_DIR": tmp, "ILS_LOG_LEVEL": "WARNING", "ILS_QUEUES": json.dumps(RETENTION)}
        )
        # Required in Redis mode (ils.secret_key); any strong key serves one run.
        env["ILS_SECRET_KEY"] = secrets.token_urlsafe(48)
        if args.redis:
            env.update({"ILS_REDIS_URL": args.redis, "ILS_REDIS_PREFIX": prefix})
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp),
            redis_url=args.redis,
            redis_prefix=prefix,
            queues=RETENTION,
        )
        system = await JobSystem.open(settings)  # migrates the embedded database
        await system.close()
        companies = await seed_users(settings)
        started = time.perf_counter()
        if args.redis:
            await fill_redis(args.redis, prefix, companies, args.jobs)
        else:
            await fill_local(settings, companies, args.jobs)
        print(f"{args.jobs:,} finished pdf jobs stored in {time.perf_counter() - started:.1f} s")
        tune_garbage_collector()
        log = Path(tmp) / "server.log"
        results: list[tuple[str, str, list[float], int]] = []
        try:
            async with server(ils_serve("--no-workers"), env, log, start_timeout_s=60) as (
                base,
                _,
            ):
                platform = await signed_in(base, "platform_admin@bench.example")
                company = await signed_in(base, "company_admin@bench.example")
                probes = [
                    ("overview", "/api/queue/stats"),
                    ("overview", "/api/queue/health"),
                    ("overview", "/api/queue/pdf/throughput"),
                    ("overview", "/admin/queues"),
                    ("workers", "/api/queue/workers"),
                    ("workers", "/admin/workers"),
                    ("failure groups", "/api/queue/failures"),
                    ("failure groups", "/admin/failures"),
                    ("latency", "/api/queue/pdf/latency?window=hour"),
                    ("latency", "/api/queue/pdf/latency?window=day"),
                    ("latency", "/admin/queues/pdf"),
                    ("job list", "/api/queue/pdf/jobs?state=completed"),
                    ("job list", "/api/queue/pdf/jobs?state=completed&offset=5000"),
                    ("job list", "/admin/queues/pdf?state=completed"),
                    ("search", "/api/queue/pdf/jobs?state=completed&search=bench-order-099"),
                ]
                for who, client in (("platform_admin", platform), ("company_admin", company)):
                    for group, path in probes:
                        times, status = await timed(client, path, args.rounds)
                        results.append((f"{group} ({who})", path, times, status))
                for client in (platform, company):
                    await client.aclose()
        finally:
            if args.redis:
                await delete_prefix(args.redis, prefix)
    mode = f"Redis ({args.redis})" if args.redis else "local (SQLite)"
    print(f"monitoring with {args.jobs:,} finished jobs in one queue, {mode}, {args.rounds} rounds")
    for label, path, times, status in results:
        if status == 404:
            print(f"  {label:<34} {path:<58} (no such page yet)")
            continue
        verdict = (
            ""
            if label.startswith("search")
            else ("  ok" if pct(times, 0.5) < TARGET_MS else "  OVER 300 ms")
        )
        print(
            f"  {label:<34} {path:<58} {status}  p50 {pct(times, 0.5):7.1f} ms"
            f"  p95 {pct(times, 0.95):7.1f} ms  max {max(times):7.1f} ms{verdict}"
        )


if __name__ == "__main__":
    asyncio.run(main())
