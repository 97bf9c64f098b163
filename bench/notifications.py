"""Live in-app notifications: from the queue to 100 open browser streams, across processes.

Builds the demo network in a fresh data directory, adds ``--clients`` staff users to
its companies, and starts ``ils serve --no-workers`` (the web process holding the
streams) and one separate ``ils worker --queues notification``: every notification
crosses two process boundaries, worker -> web process -> browser, as it does in
production where workers run on their own. Each user signs in through the API and
opens ``GET /api/notifications/stream`` (Server-Sent Events), like a browser tab.

Then this process queues ``--notifications`` system notifications through the job
system (``queue_system_notification``), paced at ``--rate`` a second (3/s by default,
inside the notification queue's 200-a-minute limit; ``--no-limit`` switches the
limit off for faster rates), each to a random connected user with a title carrying a
sequence number. A notification's delay is from just before the helper call to the
moment its event is parsed off that user's stream: queueing, the worker's pick-up,
the write, the signal (Redis pub/sub in Redis mode; the web process's database poll
in local mode, where the worker process cannot reach it) and the stream's read.

Prints delivered, missing and wrong-user deliveries (an event on a stream whose user
it was not for: must be 0), and the delay p50/p90/p99/max.

    .venv/bin/python bench/notifications.py [--clients 100] [--notifications 300]
        [--rate 3.0] [--redis URL] [--no-limit] [--connect-batch N] [--keep-logs DIR]

Local mode (SQLite, local job store) unless ``--redis`` is given; Redis mode uses a
prefix of its own and deletes its keys at the end. The streams open all at once by
default, as the tabs of a whole office do when the server comes back after a restart;
``--connect-batch N`` opens them N at a time instead. A notification not received is
looked up in the database (stored or not, when) and the logs' tails are printed;
``--keep-logs`` keeps the server's and the worker's logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import httpx
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from rich.console import Console
from sqlalchemy import select

from ils.db.engine import create_engine, session_factory
from ils.demo.setup import CREDENTIALS_FILE, prepare_demo
from ils.domain.companies import Company, Role, User
from ils.domain.content import Notification
from ils.heap import tune_garbage_collector
from ils.jobs.catalogue import build_catalogue
from ils.jobs.system import JobSystem
from ils.settings import Settings
from serving import ils_serve, log_tail, pct, process, server

STREAM_PATH: Final = "/api/notifications/stream"
TITLE_PREFIX: Final = "bench "
#: Concurrent sign-ins: each is an argon2 verification in the server's thread pool.
SIGN_IN_BATCH: Final = 8
#: How long the last notification may take before the rest count as missing.
DRAIN_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 60.0


def copy_logs(target: Path, logs: list[Path]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in logs:
        if log.exists():
            shutil.copy(log, target / log.name)


@dataclass
class Results:
    """What the clients saw, keyed by notification sequence number."""

    #: seq -> index of the client (user) it was queued for.
    target: dict[int, int] = field(default_factory=dict)
    #: seq -> perf_counter just before the helper call.
    enqueued: dict[int, float] = field(default_factory=dict)
    #: seq -> wall-clock time of the enqueue (to compare with the row's ``created_at``).
    enqueued_at: dict[int, datetime] = field(default_factory=dict)
    #: seq -> perf_counter when the right client parsed it (the first time).
    received: dict[int, float] = field(default_factory=dict)
    #: How many notifications the run queues.
    expected: int = 0
    wrong_user: int = 0
    duplicates: int = 0
    unparsed: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def receive(self, client: int, data: str, now: float) -> None:
        try:
            title = str(json.loads(data)["title"])
            seq = int(title.removeprefix(TITLE_PREFIX))
        except (ValueError, KeyError, TypeError):
            self.unparsed += 1
            return
        if self.target.get(seq) != client:
            self.wrong_user += 1
        elif seq in self.received:
            self.duplicates += 1
        else:
            self.received[seq] = now
        self.check_all_in()

    def check_all_in(self) -> None:
        """Set :attr:`all_in` once every notification is queued and received."""
        if self.expected and len(self.received) >= self.expected:
            self.all_in.set()


# -- data ------------------------------------------------------------------------------


async def add_users(settings: Settings, count: int, password: str) -> list[str]:
    """``count`` active staff users spread over the demo's active companies; e-mails."""
    # One argon2id hash (default parameters, as the app makes them) serves every user:
    # the server verifies each sign-in at full cost all the same.
    password_hash = PasswordHasher().hash(password)
    engine = create_engine(settings.effective_database_url)
    emails = [f"bench-notif-{index:03d}@bench.example" for index in range(count)]
    try:
        async with session_factory(engine)() as session:
            companies = list(
                await session.scalars(
                    select(Company.id).where(Company.is_active.is_(True)).order_by(Company.name)
                )
            )
            if not companies:
                raise RuntimeError("the demo network has no active company")
            session.add_all(
                User(
                    company_id=companies[index % len(companies)],
                    email=email,
                    name=f"Bench Reader {index}",
                    password_hash=password_hash,
                    role=Role.STAFF,
                    is_active=True,
                )
                for index, email in enumerate(emails)
            )
            await session.commit()
    finally:
        await engine.dispose()
    return emails


# -- processes -------------------------------------------------------------------------


# -- clients ---------------------------------------------------------------------------


async def sign_in(base: str, email: str, password: str) -> tuple[str, httpx.Cookies]:
    """The user's id and session cookies."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post(
            "/api/auth/sign-in", json={"email": email, "password": password}
        )
        response.raise_for_status()
        return str(response.json()["user"]["id"]), client.cookies


async def sign_in_all(
    base: str, emails: list[str], password: str
) -> list[tuple[str, httpx.Cookies]]:
    signed: list[tuple[str, httpx.Cookies]] = []
    started = time.perf_counter()
    for first in range(0, len(emails), SIGN_IN_BATCH):
        batch = emails[first : first + SIGN_IN_BATCH]
        signed += await asyncio.gather(*(sign_in(base, email, password) for email in batch))
        print(
            f"  signed in {len(signed)}/{len(emails)} ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    return signed


async def listen(
    base: str,
    index: int,
    cookies: httpx.Cookies,
    results: Results,
    connected: asyncio.Event,
) -> None:
    """One browser tab: read the stream, hand each notification event to ``results``."""
    timeout = httpx.Timeout(30.0, read=None)
    async with (
        httpx.AsyncClient(base_url=base, cookies=cookies, timeout=timeout) as client,
        client.stream("GET", STREAM_PATH, headers={"Accept": "text/event-stream"}) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(
                f"client {index}: {STREAM_PATH} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        event, data = "", list[str]()  # the event being read: its type and data lines
        async for line in response.aiter_lines():
            if not line:
                if event == "notification" and data:
                    results.receive(index, "\n".join(data), time.perf_counter())
                event, data = "", []
            elif line.startswith("retry:"):
                connected.set()
            elif line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").removeprefix(" "))
    raise RuntimeError(f"client {index}: the server ended the stream")


# -- load ------------------------------------------------------------------------------


async def send(
    system: JobSystem,
    user_ids: list[str],
    results: Results,
    count: int,
    rate: float,
    watch: list[asyncio.Task[None]],
) -> float:
    """Queue ``count`` notifications at ``rate`` a second; seconds it took."""
    rng = random.Random(17)
    started = time.perf_counter()
    for seq in range(count):
        due = started + seq / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        failed = [task for task in watch if task.done()]
        if failed:
            await failed[0]  # a stream or process ended: raise what it raised
        client = rng.randrange(len(user_ids))
        results.target[seq] = client
        results.enqueued[seq] = time.perf_counter()
        results.enqueued_at[seq] = datetime.now(UTC)
        await system.helpers.queue_system_notification(
            user_ids[client],
            f"{TITLE_PREFIX}{seq}",
            f"Benchmark notification {seq} of {count}.",
        )
    elapsed = time.perf_counter() - started
    results.check_all_in()
    return elapsed


async def wait_connected(connected: list[asyncio.Event], watch: list[asyncio.Task[None]]) -> None:
    """Until every stream has its first chunk; raises what a failed stream or process raised."""
    deadline = time.perf_counter() + CONNECT_TIMEOUT_S
    while not all(event.is_set() for event in connected):
        for task in watch:
            if task.done():
                await task
        if time.perf_counter() > deadline:
            waiting = sum(not event.is_set() for event in connected)
            raise RuntimeError(f"{waiting} streams not connected after {CONNECT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)


async def watch_process(proc: subprocess.Popen[bytes], name: str) -> None:
    """Fail the run when ``proc`` exits before the end."""
    while proc.poll() is None:
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{name} exited (code {proc.returncode})")


async def explain_missing(settings: Settings, results: Results, user_ids: list[str]) -> None:
    """For each notification not received: was it stored, when, and for whom."""
    missing = sorted(set(results.target) - set(results.received))
    titles = [f"{TITLE_PREFIX}{seq}" for seq in missing]
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            rows = {
                row.title: row
                for row in await session.scalars(
                    select(Notification).where(Notification.title.in_(titles))
                )
            }
    finally:
        await engine.dispose()
    first = min(results.enqueued.values())
    print(f"missing {len(missing)} (looked at {datetime.now(UTC).isoformat()}):")
    for seq, title in zip(missing, titles, strict=True):
        client = results.target[seq]
        row = rows.get(title)
        queued_at = results.enqueued_at[seq]
        stored = (
            f"stored as {row.id} for {row.user_id} at {row.created_at.isoformat()} "
            f"({(row.created_at - queued_at).total_seconds():.3f} s after the enqueue)"
            if row is not None
            else "NOT stored"
        )
        its = [other for other, target in results.target.items() if target == client]
        got = sum(1 for other in its if other in results.received)
        print(
            f"  #{seq} queued at +{results.enqueued[seq] - first:.3f} s "
            f"({queued_at.isoformat()}) for client {client} "
            f"(user {user_ids[client]}): {stored}; that client received {got} of its {len(its)}"
        )


async def clear_redis(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


async def run(args: argparse.Namespace, tmp: str) -> Results:
    data_dir = Path(tmp)
    prefix = f"bench-notif-{os.getpid()}"
    queues = json.dumps({"notification": {"rate_limit_max": 0}}) if args.no_limit else ""
    env = {**os.environ, "ILS_DATA_DIR": tmp, "ILS_LOG_LEVEL": "WARNING"}
    for key in ("ILS_REDIS_URL", "ILS_REDIS_PREFIX", "ILS_QUEUES"):
        env.pop(key, None)
    if args.redis:
        env |= {"ILS_REDIS_URL": args.redis, "ILS_REDIS_PREFIX": prefix}
        # Required in Redis mode (ils.secret_key); any strong key serves one run.
        env.setdefault("ILS_SECRET_KEY", secrets.token_urlsafe(48))
    if queues:
        env["ILS_QUEUES"] = queues
    settings = Settings(
        data_dir=data_dir,
        redis_url=args.redis,
        redis_prefix=prefix,
        queues=json.loads(queues) if queues else {},
    )
    print("preparing the demo network ...", flush=True)
    await prepare_demo(settings, Console(quiet=True), today=date.today())
    password = json.loads((data_dir / CREDENTIALS_FILE).read_text())["password"]
    emails = await add_users(settings, args.clients, password)
    # The demo build leaves a large heap; its full collections would stall the clients.
    tune_garbage_collector()

    results = Results(expected=args.notifications)
    server_log, worker_log = data_dir / "server.log", data_dir / "worker.log"
    worker_command = [sys.executable, "-m", "ils", "worker", "--queues", "notification"]
    system: JobSystem | None = None
    user_ids: list[str] = []
    try:
        async with server(ils_serve("--no-workers"), env, server_log, start_timeout_s=60) as (
            base,
            server_proc,
        ):
            with process(worker_command, env, worker_log) as worker_proc:
                print(f"signing in {args.clients} users ...", flush=True)
                signed = await sign_in_all(base, emails, password)
                user_ids = [user_id for user_id, _ in signed]
                connected = [asyncio.Event() for _ in signed]
                watch = [
                    asyncio.create_task(watch_process(server_proc, "ils serve")),
                    asyncio.create_task(watch_process(worker_proc, "ils worker")),
                ]
                try:
                    batch = args.connect_batch or len(signed)
                    started = time.perf_counter()
                    for first in range(0, len(signed), batch):
                        for index in range(first, min(first + batch, len(signed))):
                            cookies = signed[index][1]
                            watch.append(
                                asyncio.create_task(
                                    listen(base, index, cookies, results, connected[index])
                                )
                            )
                        await wait_connected(connected[: first + batch], watch)
                    print(
                        f"{len(connected)} streams connected in "
                        f"{time.perf_counter() - started:.1f} s; sending ...",
                        flush=True,
                    )
                    system = await JobSystem.open(settings)
                    sent_s = await send(
                        system, user_ids, results, args.notifications, args.rate, watch
                    )
                    print(
                        f"  queued {args.notifications} in {sent_s:.1f} s; waiting ...", flush=True
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(results.all_in.wait(), DRAIN_TIMEOUT_S)
                    for task in watch:
                        if task.done() and not task.cancelled() and task.exception():
                            print(f"error during the run: {task.exception()}")
                finally:
                    # Streams end before the server is asked to stop (it waits for them).
                    for task in watch:
                        task.cancel()
                    await asyncio.gather(*watch, return_exceptions=True)
    except Exception:
        # The temporary directory and its logs go with the exception: show them first
        # (a server that did not start, a stream answered 500, a process that died).
        print(log_tail(worker_log))
        print(log_tail(server_log))
        raise
    finally:
        if args.keep_logs:
            copy_logs(Path(args.keep_logs), [server_log, worker_log])
        if system is not None:
            await system.close()
        if args.redis:
            deleted = await clear_redis(args.redis, prefix)
            print(f"deleted {deleted} Redis keys matching {prefix}:*")
    if len(results.received) < len(results.target):
        await explain_missing(settings, results, user_ids)
        print(log_tail(worker_log))
        print(log_tail(server_log))
    return results


def default_limit_per_minute() -> int:
    """The notification queue's default rate limit, jobs a minute (0: none)."""
    limit = build_catalogue(Settings(_env_file=None))["notification"].rate_limit
    return 0 if limit is None else limit.max * 60_000 // limit.duration_ms


def report(args: argparse.Namespace, results: Results) -> None:
    delays = [1000 * (results.received[seq] - results.enqueued[seq]) for seq in results.received]
    mode = f"Redis ({args.redis})" if args.redis else "local (SQLite, local job store)"
    print(f"live notifications, {mode}, web and 1 notification worker in separate processes")
    limit = "off (--no-limit)" if args.no_limit else f"on ({default_limit_per_minute():,}/minute)"
    print(f"  clients {args.clients}  rate {args.rate:g}/s  queue rate limit {limit}")
    print(
        f"  notifications {args.notifications}  delivered {len(results.received)}  "
        f"missing {args.notifications - len(results.received)}  "
        f"wrong-user {results.wrong_user}  duplicates {results.duplicates}  "
        f"unparsed {results.unparsed}"
    )
    if delays:
        print(
            f"  delay p50 {pct(delays, 0.5):7.1f} ms  p90 {pct(delays, 0.9):7.1f} ms  "
            f"p99 {pct(delays, 0.99):7.1f} ms  max {max(delays):7.1f} ms"
        )
    else:
        print("  delay: nothing delivered")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="users with an open stream")
    parser.add_argument("--notifications", type=int, default=300)
    parser.add_argument("--rate", type=float, default=3.0, help="notifications queued a second")
    parser.add_argument("--redis", help="Redis mode with this URL (default: local mode)")
    parser.add_argument(
        "--no-limit",
        action="store_true",
        help="switch the notification queue's rate limit off",
    )
    parser.add_argument(
        "--connect-batch",
        type=int,
        default=0,
        metavar="N",
        help="open the streams N at a time, each batch once connected (0: all at once)",
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the server and worker logs here")
    args = parser.parse_args()
    if args.clients < 1 or args.notifications < 1 or args.rate <= 0:
        parser.error("--clients, --notifications and --rate must be positive")
    if not args.no_limit and args.rate > default_limit_per_minute() / 60:
        parser.error("--rate exceeds the notification queue's rate limit: add --no-limit")
    with tempfile.TemporaryDirectory() as tmp:
        results = await run(args, tmp)
    report(args, results)


if __name__ == "__main__":
    asyncio.run(main())
