"""1,000 concurrent signed-in users on one ``ils serve`` (issue 21): API latency, errors,
live notification delay and the server's memory.

What it measures: ``--users`` people (1,000 by default) using the platform at once
against one ``ils serve`` with its workers in-process, as production runs it, in one of
two deployments: the embedded default (SQLite, the local job store, no Redis) or
PostgreSQL + Redis (``--deployment full``: a database of its own created on the local
PostgreSQL and dropped at the end, and the local Redis under a key prefix of its own;
or ``--postgres URL`` / ``--redis URL`` for other servers).

How: builds the demo network in a fresh data directory, adds companies and users
straight to the database (``--practices`` practices, the demo's three and new ones;
``--lab-share`` of the users in the demo lab, half staff and half lab technicians;
every account with ONE argon2 hash, the demo password's), starts ``ils serve`` on a
free port, connects each new practice to the lab through the marketplace API (request,
then the lab admin's accept) and places one order per practice, whose PDFs are the
first to exist. Then ``--client-processes`` load processes (``bench/users_support/
client.py``: asyncio + httpx, nothing of ILS imported; two by default for more than
300 users) sign every user in through the API (``--sign-in-concurrency`` at once: each
is an argon2 verification) and open each user's notification stream
(``GET /api/notifications/stream``, Server-Sent Events, reconnecting with
``Last-Event-ID`` like a browser). The lab's bench users are made active only after
the seed orders (which would otherwise notify each of them), and the run starts once
the notification queue is empty: the ramp-up and its jobs are not measured.

Each user then thinks ``--think`` seconds (5-15, uniform) between actions. Practice
users list orders, open one (the order and its documents), download a PDF of their
company that exists, and place an order about every ``--order-every`` seconds (60);
lab users list, open, download, and move orders along the lifecycle (staff accept,
start production, pass quality check, deliver; lab technicians produce and ship).
The client processes split the orders between them so two lab users never move the
same order at once. After ``--warmup`` seconds, requests started within the next
``--duration`` seconds (300) are measured; the streams stay open ``--grace`` seconds
more for the window's last notifications.

Stream delivery delay: each order placed notifies every user of the lab, each lab move
every user of the order's practice (``ils.web.services.orders``, the ``notification``
queue's ``order-notification`` jobs). The delay runs from just before the request
that makes the notification is sent to the moment the event is parsed off each
recipient's stream, both read on ``CLOCK_MONOTONIC`` (one clock for every process
on the machine); a notification of a window's action not received by the end of the
grace time counts as missing.

Prints requests/s and p50/p99/max per endpoint, errors by status, delivery delay
p50/p99/max with delivered and missing, the streams open at the end, the server's
memory (RSS and PSS of the ``ils serve`` process tree: after start-up, once every
user is in, peak in the window, at the end), the server's and the clients' CPU, the
clients' event-loop lag (included in every latency they measure) and the queues'
backlog at the end, then the verdict against the targets.

    .venv/bin/python bench/users.py [--users 1000] [--duration 300]
        [--deployment embedded|full] [--postgres URL] [--redis URL]
        [--practices 20] [--lab-share 0.1] [--think 5 15] [--order-every 60]
        [--warmup 30] [--grace 15] [--client-processes N] [--sign-in-concurrency 4]
        [--server-env KEY=VALUE ...] [--keep-logs DIR] [--time-server PREFIX] [--json]

An order notifies every active user of the lab and a lab's move every user of the
practice, with one ``company-order-notification`` job per event (not per recipient);
the ``notification`` queue starts at most 6,000 jobs a minute (``ils.jobs.catalogue``).
The queues' backlog at the end shows whether a queue, not the stream, set the delay.
``--server-env ILS_QUEUES__NOTIFICATION__RATE_LIMIT_MAX=0`` measures the same run
without that limit; ``--server-env`` takes any ``ILS_...`` setting of the server.

Targets (issue 21): 0 errors; API p99 under 100 ms (every endpoint); notifications
delivered within 1 s (p99 of the delay, and none missing), on this two-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
import httpx
import redis.asyncio as aioredis
from rich.console import Console
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.demo.setup import CREDENTIALS_FILE, prepare_demo
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.heap import tune_garbage_collector
from ils.jobs.outbox import OutboxRow
from ils.settings import Settings
from serving import ROOT, ils_serve, log_tail, pct, process, server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from users_support.client import order_body
from users_support.procstat import TreeReading, read_tree
from users_support.timing import TIMING_PATH, report_lines, window_timings

CLIENT: Final = Path(__file__).resolve().parent / "users_support" / "client.py"
LAB_ADMIN: Final = "admin@clearview-lab.example"
PLATFORM_ADMIN: Final = "platform-admin@clearview-lab.example"
DEFAULT_ADMIN_POSTGRES: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS: Final = "redis://127.0.0.1:6379/0"
PATIENTS_PER_PRACTICE: Final = 20
API_P99_TARGET_MS: Final = 100.0
DELIVERY_TARGET_MS: Final = 1000.0
#: The ramp-up's requests (sign-in, the first stream connect) are not API figures.
NOT_API: Final = frozenset({"GET /api/notifications/stream"})


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def log_errors(path: Path, shown: int = 5) -> tuple[int, list[str]]:
    """How many ERROR / CRITICAL lines and tracebacks the server logged, and the first few."""
    if not path.exists():
        return 0, []
    lines = [
        line
        for line in path.read_text(errors="replace").splitlines()
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]
    return len(lines), [line[:300] for line in lines[:shown]]


def keep_log(log: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if log.exists():
        shutil.copy(log, target / log.name)


# -- the deployment ----------------------------------------------------------------------


@dataclass
class Deployment:
    """Where the server keeps its data, and what to clean up afterwards."""

    name: str
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "bull"
    #: The admin connection that created ``database_url``'s database (dropped at the end).
    created_by: str | None = None
    database: str | None = None

    def describe(self) -> str:
        db = "PostgreSQL" if self.database_url else "SQLite"
        jobs = "Redis (BullMQ)" if self.redis_url else "local job store"
        return f"{db} + {jobs}"


def plain_dsn(url: str) -> str:
    """An asyncpg DSN for a SQLAlchemy URL (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str) -> tuple[str, str]:
    """A new empty database on ``admin_url``'s server: its name and URL."""
    name = f"bench_users_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return name, url


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def clear_redis(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


async def open_deployment(args: argparse.Namespace) -> Deployment:
    if args.deployment == "embedded" and not (args.postgres or args.redis):
        return Deployment("embedded")
    deployment = Deployment("full" if args.deployment == "full" else "custom")
    if args.postgres:
        deployment.database_url = args.postgres
    elif args.deployment == "full":
        deployment.database, deployment.database_url = await create_database(args.admin_postgres)
        deployment.created_by = args.admin_postgres
    if args.redis or args.deployment == "full":
        deployment.redis_url = args.redis or DEFAULT_REDIS
        deployment.redis_prefix = f"bench-users-{secrets.token_hex(4)}"
    return deployment


async def close_deployment(deployment: Deployment) -> None:
    if deployment.redis_url:
        deleted = await clear_redis(deployment.redis_url, deployment.redis_prefix)
        progress(f"deleted {deleted} Redis keys under {deployment.redis_prefix}:")
    if deployment.created_by and deployment.database:
        await drop_database(deployment.created_by, deployment.database)
        progress(f"dropped database {deployment.database}")


# -- the people ----------------------------------------------------------------------------


@dataclass
class Person:
    email: str
    id: str
    company: str
    kind: str
    role: str


@dataclass
class Population:
    lab: str
    practices: list[str]
    #: Practices added by the bench (not connected to the lab yet).
    new_practices: list[str]
    people: list[Person]
    patients: dict[str, list[str]]

    def of(self, company: str) -> list[Person]:
        return [person for person in self.people if person.company == company]


async def populate(
    settings: Settings, users: int, practice_count: int, lab_share: float
) -> Population:
    """Companies, patients and ``users`` accounts, written straight to the database.

    Every account gets the demo accounts' password hash: one argon2 hash made once by
    the demo build (hashing a thousand times would take a minute); each sign-in still
    verifies it at full cost.
    """
    lab_users = max(2, round(users * lab_share)) if users >= 4 else 1
    practice_users = users - lab_users
    practice_count = max(1, min(practice_count, practice_users))
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            lab = await session.scalar(select(Company).where(Company.kind == CompanyKind.LAB))
            admin = await session.scalar(select(User).where(User.email == LAB_ADMIN))
            assert lab is not None
            assert admin is not None
            demo = list(
                await session.scalars(
                    select(Company)
                    .where(Company.kind == CompanyKind.PRACTICE)
                    .order_by(Company.name)
                )
            )
            practices = demo[:practice_count]
            new = [
                Company(
                    kind=CompanyKind.PRACTICE,
                    name=f"Bench Practice {n:03d}",
                    address_line1=f"{n} High Street",
                    city="Sheffield",
                    postcode="S1 2HE",
                    email=f"hello@bench-practice-{n:03d}.example",
                )
                for n in range(len(demo), practice_count)
            ]
            session.add_all(new)
            await session.flush()
            practices += new
            for practice in new:
                session.add_all(
                    Patient(
                        company_id=practice.id,
                        reference=f"B{1000 + n}",
                        first_name="Bench",
                        last_name=f"Patient {n}",
                        date_of_birth=date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                    )
                    for n in range(PATIENTS_PER_PRACTICE)
                )
            accounts: list[User] = []
            for n in range(users):
                if n < lab_users:
                    company, role = lab, (Role.STAFF if n % 2 == 0 else Role.LAB_TECH)
                else:
                    slot = (n - lab_users) % len(practices)
                    company = practices[slot]
                    first = n - lab_users < len(practices)
                    # A new practice's first user is its admin: they ask the lab to connect.
                    role = Role.ADMIN if first and company in new else Role.STAFF
                accounts.append(
                    User(
                        company_id=company.id,
                        email=f"user{n:04d}@bench-users.example",
                        name=f"Bench User {n}",
                        password_hash=admin.password_hash,
                        role=role,
                        # The lab's bench users start inactive: the seed orders (placed
                        # before they sign in) then notify the demo's five lab users only,
                        # not a backlog of hundreds that the measurement would inherit.
                        is_active=company is not lab,
                    )
                )
            session.add_all(accounts)
            await session.flush()
            kinds = {lab.id: "lab", **{p.id: "practice" for p in practices}}
            people = [
                Person(u.email, u.id, u.company_id, kinds[u.company_id], u.role.value)
                for u in accounts
            ]
            patients: dict[str, list[str]] = {}
            for practice in practices:
                patients[practice.id] = list(
                    await session.scalars(
                        select(Patient.id).where(Patient.company_id == practice.id)
                    )
                )
            population = Population(
                lab.id, [p.id for p in practices], [p.id for p in new], people, patients
            )
            await session.commit()
    finally:
        await engine.dispose()
    return population


# -- the server --------------------------------------------------------------------------


async def signed_in(base: str, email: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=60)
    response = await client.post("/api/auth/sign-in", json={"email": email, "password": password})
    if response.status_code != 200:
        await client.aclose()
        raise RuntimeError(f"sign-in of {email}: {response.status_code} {response.text[:200]}")
    client.headers["X-CSRF-Token"] = str(response.json()["csrf_token"])
    return client


async def activate(settings: Settings, user_ids: list[str]) -> None:
    """Make the lab's bench users active (they start inactive, see :func:`populate`)."""
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            await session.execute(update(User).where(User.id.in_(user_ids)).values(is_active=True))
            await session.commit()
    finally:
        await engine.dispose()


async def wait_for_quiet_queue(
    base: str, password: str, queue: str = "notification", timeout_s: float = 600.0
) -> float:
    """Until ``queue`` has nothing waiting, delayed or running (the set-up's and the
    ramp-up's jobs done, so the measurement does not inherit their backlog); seconds."""
    started = time.monotonic()
    client = await signed_in(base, PLATFORM_ADMIN, password)
    try:
        while True:
            response = await client.get("/api/queue/stats")
            response.raise_for_status()
            counts = response.json().get(queue, {})
            left = sum(int(counts.get(state, 0)) for state in ("waiting", "delayed", "active"))
            if left == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                progress(f"  the {queue} queue still has {left} jobs; measuring anyway")
                return time.monotonic() - started
            progress(f"  waiting for the {queue} queue to empty: {left} jobs left")
            await asyncio.sleep(5)
    finally:
        await client.aclose()


async def connect_and_seed(
    base: str, population: Population, password: str
) -> dict[str, list[str]]:
    """Connect each new practice to the lab through the marketplace API, and place one
    order per practice (its PDFs are the first the workers make, so downloads find
    documents early). Returns the seed orders by company (the lab sees all of them)."""
    rng = random.Random(7)
    seeds: dict[str, list[str]] = {population.lab: []}
    lab_admin = await signed_in(base, LAB_ADMIN, password)
    try:
        for practice in population.practices:
            first = population.of(practice)[0]
            client = await signed_in(base, first.email, password)
            try:
                if practice in population.new_practices:
                    asked = await client.post(
                        "/api/marketplace/connections",
                        json={"target_id": population.lab, "message": "bench/users.py"},
                    )
                    if asked.status_code != 201:
                        raise RuntimeError(f"connection request: {asked.status_code} {asked.text}")
                    connection = asked.json()["id"]
                    accepted = await lab_admin.post(
                        f"/api/marketplace/connections/{connection}/accept"
                    )
                    if accepted.status_code != 200:
                        raise RuntimeError(f"accept: {accepted.status_code} {accepted.text}")
                patient = rng.choice(population.patients[practice])
                placed = await client.post(
                    "/api/orders", json=order_body(population.lab, patient, rng)
                )
                if placed.status_code != 201:
                    raise RuntimeError(f"seed order: {placed.status_code} {placed.text[:300]}")
                order_id = str(placed.json()["id"])
                seeds[practice] = [order_id]
                seeds[population.lab].append(order_id)
            finally:
                await client.aclose()
    finally:
        await lab_admin.aclose()
    return seeds


# -- measuring the server --------------------------------------------------------------------


@dataclass
class Memory:
    """Readings of the server's process tree."""

    readings: list[tuple[float, TreeReading]] = field(default_factory=list)

    async def sample(self, pids: list[int], every_s: float = 1.0) -> None:
        """Read the trees of ``pids`` (the server, and ``ils worker`` processes when
        they run apart) every ``every_s``, as one."""
        while True:
            trees = await asyncio.to_thread(lambda: [read_tree(pid) for pid in pids])
            pss = [tree.pss_bytes for tree in trees]
            reading = TreeReading(
                sum(tree.processes for tree in trees),
                sum(tree.rss_bytes for tree in trees),
                None if None in pss else sum(p or 0 for p in pss),
                sum(tree.cpu_s for tree in trees),
            )
            self.readings.append((time.monotonic(), reading))
            await asyncio.sleep(every_s)

    def between(self, start: float, end: float) -> list[TreeReading]:
        return [reading for at, reading in self.readings if start <= at <= end]

    def at(self, moment: float) -> TreeReading | None:
        before = [reading for at, reading in self.readings if at <= moment]
        return before[-1] if before else None


async def queue_backlog(env: dict[str, str]) -> dict[str, dict[str, int]]:
    """``ils jobs stats --json``: each queue's counts by state now."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "ils", "jobs", "stats", "--json"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    try:
        stats = json.loads(out)
    except ValueError:
        return {}
    return {key: value for key, value in stats.items() if isinstance(value, dict)}


async def outbox_backlog(settings: Settings) -> dict[str, int]:
    """Jobs committed but not yet handed to Redis (``ils_outbox``), by queue: with
    PostgreSQL + Redis a job waits there first, which the queues' counts do not show."""
    engine = create_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(OutboxRow.queue, func.count()).group_by(OutboxRow.queue)
            )
            return {queue: int(count) for queue, count in rows.all()}
    finally:
        await engine.dispose()


# -- the clients ---------------------------------------------------------------------------


class ClientProcess:
    """One load-generating process (``users_support/client.py``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, config: dict[str, Any]) -> ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CLIENT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,
        )
        client = cls(proc)
        await client.send(config)
        return client

    async def send(self, document: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(document) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self, event: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"a client process exited (code {await self.proc.wait()})")
            document: dict[str, Any] = json.loads(line)
            if document.get("event") == event:
                return document

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


# -- the report ----------------------------------------------------------------------------


def merge(
    results: list[dict[str, Any]], population: Population, duration_s: float
) -> dict[str, Any]:
    """One summary of every client process's figures (rates over the window's
    ``duration_s``: the requests measured are those started inside it)."""
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    for result in results:
        for endpoint, values in result["latencies"].items():
            latencies.setdefault(endpoint, []).extend(values)
        for endpoint, counts in result["errors"].items():
            merged = errors.setdefault(endpoint, {})
            for status, count in counts.items():
                merged[status] = merged.get(status, 0) + count
    measured_s = duration_s
    endpoints = {}
    for endpoint in sorted(latencies):
        values = latencies[endpoint]
        endpoints[endpoint] = {
            "requests": len(values),
            "per_s": len(values) / measured_s,
            "p50_ms": pct(values, 0.5),
            "p99_ms": pct(values, 0.99),
            "max_ms": max(values),
            "errors": errors.get(endpoint, {}),
        }
    for endpoint, counts in errors.items():
        endpoints.setdefault(
            endpoint,
            {"requests": 0, "per_s": 0.0, "p50_ms": None, "p99_ms": None, "max_ms": None},
        )["errors"] = counts
    api = [v for e, values in latencies.items() if e not in NOT_API for v in values]
    error_total = sum(sum(counts.values()) for counts in errors.values())

    # Stream delivery: every window action's notification on every recipient's stream.
    recipients: dict[str, set[str]] = {}
    for person in population.people:
        recipients.setdefault(person.company, set()).add(person.id)
    sent: dict[tuple[str, str], tuple[float, str]] = {}
    for result in results:
        for order_id, status, at, notify, inside in result["actions"]:
            if inside:
                sent[(order_id, status)] = (at, notify)
    expected = sum(len(recipients.get(notify, ())) for _, notify in sent.values())
    delays: list[float] = []
    seen: set[tuple[str, str, str]] = set()
    duplicates = wrong = outside = 0
    for result in results:
        for order_id, status, user_id, at in result["receipts"]:
            action = sent.get((order_id, status))
            if action is None:
                outside += 1
                continue
            if user_id not in recipients.get(action[1], ()):
                wrong += 1
            elif (order_id, status, user_id) in seen:
                duplicates += 1
            else:
                seen.add((order_id, status, user_id))
                delays.append(1000 * (at - action[0]))
    lags = [lag for result in results for lag in result["lags_ms"]]
    slow = sorted(
        (at, endpoint, elapsed)
        for result in results
        for at, endpoint, elapsed in result["slow"]
        if endpoint not in NOT_API
    )
    # Slow requests bunched within a second of each other: the whole server stalled.
    bunches = sum(1 for n, item in enumerate(slow) if n == 0 or item[0] - slow[n - 1][0] > 1.0)
    sign_ins = [ms for result in results for ms in result["sign_in_ms"]]
    skipped: dict[str, int] = {}
    for result in results:
        for what, count in result["skipped"].items():
            skipped[what] = skipped.get(what, 0) + count
    return {
        "measured_s": measured_s,
        "endpoints": endpoints,
        "api": {
            "requests": len(api),
            "per_s": len(api) / measured_s,
            "p50_ms": pct(api, 0.5),
            "p99_ms": pct(api, 0.99),
            "max_ms": max(api) if api else None,
        },
        "errors": error_total,
        "delivery": {
            "actions": len(sent),
            "expected": expected,
            "delivered": len(delays),
            "within_target": sum(delay < DELIVERY_TARGET_MS for delay in delays),
            "missing": expected - len(delays),
            "duplicates": duplicates,
            "wrong_user": wrong,
            "from_outside_the_window": outside,
            "other_events": sum(result["other_events"] for result in results),
            "p50_ms": pct(delays, 0.5),
            "p99_ms": pct(delays, 0.99),
            "max_ms": max(delays) if delays else None,
        },
        "streams": {
            "open_at_end": sum(result["streams_open_at_end"] for result in results),
            "users": sum(result["users"] for result in results),
            "drops": sum(result["stream_drops"] for result in results),
            "reconnects": sum(result["stream_reconnects"] for result in results),
        },
        "clients": [
            {
                "users": result["users"],
                "cpu_percent": 100 * result["cpu_s"] / result["measured_s"],
                "loop_lag_p99_ms": pct(result["lags_ms"], 0.99),
                "loop_lag_max_ms": max(result["lags_ms"], default=math.nan),
            }
            for result in results
        ],
        "client_loop_lag_p99_ms": pct(lags, 0.99),
        "slow_requests": {
            "over_ms": API_P99_TARGET_MS,
            "count": len(slow),
            "bunches": bunches,
            "first": [
                {"at_s": at - slow[0][0], "endpoint": endpoint, "ms": elapsed}
                for at, endpoint, elapsed in slow[:20]
            ],
        },
        "sign_in": {"count": len(sign_ins), "p50_ms": pct(sign_ins, 0.5)},
        "skipped": skipped,
        "unmeasured_requests": sum(result["unmeasured"] for result in results),
    }


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f} MiB"


def ms(value: float | None) -> str:
    return "      -" if value is None or math.isnan(value) else f"{value:7.1f}"


def verdict(summary: dict[str, Any]) -> list[tuple[str, bool]]:
    api = [
        values["p99_ms"]
        for endpoint, values in summary["endpoints"].items()
        if endpoint not in NOT_API and values["p99_ms"] is not None
    ]
    delivery = summary["delivery"]
    worst = max(api, default=math.nan)
    return [
        (f"errors: {summary['errors']} (target 0)", summary["errors"] == 0),
        (
            f"API p99 under {API_P99_TARGET_MS:.0f} ms on every endpoint "
            f"(worst {worst:.1f} ms; all API requests together {summary['api']['p99_ms']:.1f} ms)",
            bool(api) and worst < API_P99_TARGET_MS,
        ),
        (
            f"notifications delivered within {DELIVERY_TARGET_MS / 1000:.0f} s "
            f"(p99 {ms(delivery['p99_ms']).strip()} ms, {delivery['missing']} missing "
            f"of {delivery['expected']})",
            delivery["expected"] > 0
            and delivery["missing"] == 0
            and delivery["p99_ms"] < DELIVERY_TARGET_MS,
        ),
    ]


def workers_where(worker_processes: int) -> str:
    """Where the run's workers ran, for the report's first line."""
    if worker_processes:
        return f"workers in {worker_processes} `ils worker` process(es)"
    return "workers in the server"


def print_report(summary: dict[str, Any]) -> None:
    run = summary["run"]
    print(
        f"{run['users']} users ({run['lab_users']} lab, {run['practice_users']} in "
        f"{run['practices']} practices), {run['deployment']} ({run['stores']}), "
        f"{workers_where(run['worker_processes'])}, {run['client_processes']} client "
        "process(es); "
        f"think {run['think'][0]:g}-{run['think'][1]:g} s, an order every "
        f"~{run['order_every']:g} s per practice user; {summary['measured_s']:.0f} s measured "
        f"after {run['warmup']:g} s of warm-up"
    )
    if run["server_env"]:
        print(f"  server settings changed for this run: {' '.join(run['server_env'])}")
    print(
        f"  ramp-up (not measured): {summary['sign_in']['count']} sign-ins "
        f"(p50 {summary['sign_in']['p50_ms']:.0f} ms) and streams in {run['ramp_s']:.0f} s, "
        f"then {run['drained_s']:.0f} s until the set-up's notifications were delivered"
    )
    print(
        f"  {'endpoint':<34} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7}  errors"
    )
    for endpoint, values in summary["endpoints"].items():
        errors = ", ".join(f"{status}: {n}" for status, n in sorted(values["errors"].items()))
        print(
            f"  {endpoint:<34} {values['requests']:>8} {values['per_s']:>7.1f} "
            f"{ms(values['p50_ms'])} {ms(values['p99_ms'])} {ms(values['max_ms'])}  "
            f"{errors or '0'}"
        )
    api = summary["api"]
    print(
        f"  {'all API requests':<34} {api['requests']:>8} {api['per_s']:>7.1f} "
        f"{ms(api['p50_ms'])} {ms(api['p99_ms'])} {ms(api['max_ms'])}  {summary['errors']}"
    )
    d = summary["delivery"]
    print(
        f"  stream delivery: {d['actions']} actions made {d['expected']} notifications; "
        f"delivered {d['delivered']} ({d['within_target']} within "
        f"{DELIVERY_TARGET_MS / 1000:.0f} s), missing {d['missing']}, "
        f"duplicates {d['duplicates']}, "
        f"wrong user {d['wrong_user']}; delay p50 {ms(d['p50_ms']).strip()} ms  "
        f"p99 {ms(d['p99_ms']).strip()} ms  max {ms(d['max_ms']).strip()} ms"
    )
    s = summary["streams"]
    print(
        f"  streams: {s['open_at_end']} of {s['users']} open at the end of the window, "
        f"{s['drops']} lost during it, {s['reconnects']} reconnects"
    )
    m = summary["memory"]
    print(
        "  server memory (ils serve tree and any ils worker, RSS / PSS): after start-up "
        f"{mib(m['start_rss'])} / "
        f"{mib(m['start_pss'])}; users in {mib(m['ready_rss'])} / {mib(m['ready_pss'])}; "
        f"peak in window {mib(m['peak_rss'])} / {mib(m['peak_pss'])}; "
        f"end {mib(m['end_rss'])} / {mib(m['end_pss'])} ({m['processes']} processes); "
        f"RSS peak of the whole run (sign-ins' argon2 included) {mib(m['peak_run_rss'])}"
    )
    clients = ", ".join(
        f"{c['cpu_percent']:.0f}% (lag p99 {c['loop_lag_p99_ms']:.1f} ms, "
        f"max {c['loop_lag_max_ms']:.0f} ms)"
        for c in summary["clients"]
    )
    print(
        f"  CPU in the window (100% = one core of 2): server tree {m['server_cpu_percent']:.0f}%; "
        f"client processes {clients}"
    )
    slow = summary["slow_requests"]
    if slow["count"]:
        print(
            f"  API requests over {slow['over_ms']:.0f} ms: {slow['count']}, in {slow['bunches']} "
            "bunch(es) (started within 1 s of each other: a bunch is a stall of the server)"
        )
    if summary["skipped"]:
        print(
            "  user actions that found nothing to do: "
            + ", ".join(f"{what} {n}" for what, n in sorted(summary["skipped"].items()))
        )
    if summary["backlog"]:
        print(
            "  queues at the end (waiting / delayed / active): "
            + ", ".join(
                f"{queue} {c.get('waiting', 0)}/{c.get('delayed', 0)}/{c.get('active', 0)}"
                for queue, c in summary["backlog"].items()
            )
        )
    if summary.get("outbox"):
        print(
            "  jobs still in the outbox at the end (not yet in Redis): "
            + ", ".join(f"{queue} {n}" for queue, n in sorted(summary["outbox"].items()))
        )
    if summary["server_log_errors"]:
        print(f"  the server logged {summary['server_log_errors']} errors; the first:")
        for line in summary["server_log_first_errors"]:
            print(f"    {line}")
    if summary.get("server_timing"):
        print("  server timing in the window (bench/server_timing, --time-server):")
        for line in summary["server_timing"]:
            print(line)
    for line, met in summary["verdict"]:
        print(f"  target: {line}: {'met' if met else 'NOT met'}")


# -- the run -------------------------------------------------------------------------------


def server_env(args: argparse.Namespace, tmp: str, deployment: Deployment) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ILS_") or key == "ILS_SECRET_KEY"
    }
    for key in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"):
        env.pop(key, None)
    env |= {"ILS_DATA_DIR": tmp, "ILS_LOG_LEVEL": "WARNING"}
    if deployment.database_url:
        env["ILS_DATABASE_URL"] = deployment.database_url
    if deployment.redis_url:
        env |= {"ILS_REDIS_URL": deployment.redis_url, "ILS_REDIS_PREFIX": deployment.redis_prefix}
    # Required beyond the embedded default (ils.secret_key); any strong key serves one run.
    env.setdefault("ILS_SECRET_KEY", secrets.token_urlsafe(48))
    extra = [*os.environ.get("BENCH_SERVER_ENV", "").split(), *args.server_env]
    env.update(dict(kv.split("=", 1) for kv in extra if "=" in kv))
    if args.time_server:
        # bench/server_timing/sitecustomize.py times SQLite and the collector in the
        # server's (and workers') processes only.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TIMING_PATH), env.get("PYTHONPATH")]))
        env["BENCH_SERVER_TIMING"] = args.time_server
    return env


async def run(args: argparse.Namespace, tmp: str, deployment: Deployment) -> dict[str, Any]:
    data_dir = Path(tmp)
    settings = Settings(
        data_dir=data_dir,
        database_url=deployment.database_url,
        redis_url=deployment.redis_url,
        redis_prefix=deployment.redis_prefix,
    )
    if deployment.database_url:
        # Only the embedded default migrates itself (``ils db upgrade`` elsewhere).
        progress("migrating the database ...")
        await upgrade_database(deployment.database_url)
    progress(f"building the demo network ({deployment.describe()}) ...")
    await prepare_demo(settings, Console(quiet=True), today=date.today())
    password = str(json.loads((data_dir / CREDENTIALS_FILE).read_text())["password"])
    population = await populate(settings, args.users, args.practices, args.lab_share)
    lab_users = len(population.of(population.lab))
    progress(
        f"  {len(population.people)} users: {lab_users} in the lab, the rest in "
        f"{len(population.practices)} practices ({len(population.new_practices)} new)"
    )
    # The build leaves a large heap: keep the collector's full passes out of the run.
    tune_garbage_collector()
    env = server_env(args, tmp, deployment)
    log = data_dir / "server.log"
    processes = args.client_processes or (1 if args.users <= 300 else 2)
    memory = Memory()
    clients: list[ClientProcess] = []
    sampler: asyncio.Task[None] | None = None
    try:
        serve = ils_serve("--no-workers") if args.worker_processes else ils_serve()
        async with contextlib.AsyncExitStack() as stack:
            workers = [
                stack.enter_context(process([sys.executable, "-m", "ils", "worker"], env, log))
                for _ in range(args.worker_processes)
            ]
            base, proc = await stack.enter_async_context(server(serve, env, log))
            sampler = asyncio.create_task(
                memory.sample([proc.pid, *(worker.pid for worker in workers)])
            )
            await asyncio.sleep(1.5)
            started_up = time.monotonic()
            progress("connecting the new practices and placing the seed orders ...")
            seeds = await connect_and_seed(base, population, password)
            await activate(settings, [p.id for p in population.of(population.lab)])
            progress(
                f"signing in {args.users} users in {processes} client process(es), "
                f"{args.sign_in_concurrency} at a time, and opening their streams ..."
            )
            ramp_started = time.monotonic()
            for index in range(processes):
                mine = population.people[index::processes]
                config = {
                    "base": base,
                    "password": password,
                    "index": index,
                    "processes": processes,
                    "users": [asdict(person) for person in mine],
                    "patients": population.patients,
                    "lab": population.lab,
                    "seeds": seeds,
                    "think": list(args.think),
                    "order_every": args.order_every,
                    "sign_in_concurrency": max(1, args.sign_in_concurrency // processes),
                    "seed": 1000 + index,
                }
                clients.append(await ClientProcess.start(config))
            ready = await asyncio.gather(*(client.receive("ready") for client in clients))
            ramp_s = time.monotonic() - ramp_started
            opened = sum(r["streams"] for r in ready)
            progress(f"  {opened} of {args.users} streams open after {ramp_s:.0f} s")
            drained_s = await wait_for_quiet_queue(base, password)
            ready_at = time.monotonic()
            start = time.monotonic() + 0.5
            window_start = start + args.warmup
            window_end = window_start + args.duration
            stop = window_end + args.grace
            go = {
                "start": start,
                "window_start": window_start,
                "window_end": window_end,
                "stop": stop,
            }
            for client in clients:
                await client.send(go)
            progress(
                f"running: {args.warmup:g} s warm-up, {args.duration:g} s measured, "
                f"{args.grace:g} s for the last notifications ..."
            )
            results = await asyncio.gather(*(client.receive("result") for client in clients))
            backlog = await queue_backlog(env)
            outbox = await outbox_backlog(settings) if deployment.database_url else {}
            sampler.cancel()
            end_reading = memory.at(time.monotonic())
    except Exception:
        progress(log_tail(log, 30))
        raise
    finally:
        if sampler is not None:
            sampler.cancel()
        for client in clients:
            await client.stop()
        if args.keep_logs:
            await asyncio.to_thread(keep_log, log, Path(args.keep_logs))
    summary = merge(list(results), population, args.duration)
    summary["server_log_errors"], summary["server_log_first_errors"] = log_errors(log)
    window = memory.between(window_start, window_end)
    start_reading, ready_reading = memory.at(started_up), memory.at(ready_at)
    first_in = memory.at(window_start) or ready_reading
    last_in = memory.at(window_end) or end_reading
    cpu = (
        100 * (last_in.cpu_s - first_in.cpu_s) / args.duration
        if first_in is not None and last_in is not None
        else math.nan
    )
    summary["memory"] = {
        "start_rss": start_reading.rss_bytes if start_reading else None,
        "start_pss": start_reading.pss_bytes if start_reading else None,
        "ready_rss": ready_reading.rss_bytes if ready_reading else None,
        "ready_pss": ready_reading.pss_bytes if ready_reading else None,
        "peak_rss": max((r.rss_bytes for r in window), default=None),
        "peak_pss": max((r.pss_bytes or 0 for r in window), default=None),
        "peak_run_rss": max((r.rss_bytes for _, r in memory.readings), default=None),
        "end_rss": end_reading.rss_bytes if end_reading else None,
        "end_pss": end_reading.pss_bytes if end_reading else None,
        "processes": max((r.processes for r in window), default=0),
        "server_cpu_percent": cpu,
    }
    summary["backlog"] = {
        queue: {state: counts.get(state, 0) for state in ("waiting", "delayed", "active")}
        for queue, counts in backlog.items()
    }
    summary["outbox"] = outbox
    summary["run"] = {
        "users": args.users,
        "lab_users": lab_users,
        "practice_users": args.users - lab_users,
        "practices": len(population.practices),
        "deployment": deployment.name,
        "stores": deployment.describe(),
        "client_processes": processes,
        "worker_processes": args.worker_processes,
        "think": list(args.think),
        "order_every": args.order_every,
        "warmup": args.warmup,
        "duration": args.duration,
        "ramp_s": ramp_s,
        "drained_s": drained_s,
        "server_env": [*os.environ.get("BENCH_SERVER_ENV", "").split(), *args.server_env],
    }
    if args.time_server:
        timings = window_timings(args.time_server, window_start, window_end)
        summary["server_timing"] = report_lines(timings, args.duration)
    summary["verdict"] = verdict(summary)
    return summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=300.0, help="measured seconds")
    parser.add_argument(
        "--deployment",
        choices=("embedded", "full"),
        default="embedded",
        help="embedded: SQLite + local job store; full: PostgreSQL + Redis on this machine",
    )
    parser.add_argument(
        "--postgres", help="an empty PostgreSQL database URL to use (migrated by the bench)"
    )
    parser.add_argument(
        "--admin-postgres",
        default=DEFAULT_ADMIN_POSTGRES,
        help="with --deployment full: the server on which a database is created and dropped",
    )
    parser.add_argument("--redis", help=f"Redis URL (--deployment full: {DEFAULT_REDIS})")
    parser.add_argument("--practices", type=int, default=20, help="practices (3 from the demo)")
    parser.add_argument("--lab-share", type=float, default=0.1, help="share of users in the lab")
    parser.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"))
    parser.add_argument(
        "--order-every",
        type=float,
        default=60.0,
        help="mean seconds between orders of one practice user (0: none)",
    )
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring")
    parser.add_argument(
        "--grace", type=float, default=15.0, help="seconds the streams stay open after"
    )
    parser.add_argument(
        "--client-processes", type=int, default=0, help="0: 1 up to 300 users, else 2"
    )
    parser.add_argument("--sign-in-concurrency", type=int, default=4)
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="run the workers as this many `ils worker` processes (0: inside the server)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of ils serve (also BENCH_SERVER_ENV, space-separated)",
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the server's log here")
    parser.add_argument(
        "--time-server",
        metavar="PREFIX",
        help="time SQLite statements, commits and garbage collection in the server "
        "(bench/server_timing): each process writes PREFIX.<pid>.json, and the report "
        "adds the window's share",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    if args.users < 2 or args.duration <= 0 or args.think[0] > args.think[1]:
        parser.error("--users must be at least 2, --duration positive, --think MIN <= MAX")
    if args.time_server:
        args.time_server = str(Path(args.time_server).resolve())
    return args


async def main() -> None:
    args = parse_args()
    deployment = await open_deployment(args)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-users-") as tmp:
            summary = await run(args, tmp, deployment)
    finally:
        await close_deployment(deployment)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_report(summary)


if __name__ == "__main__":
    asyncio.run(main())
