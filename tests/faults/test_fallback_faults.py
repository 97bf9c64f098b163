"""The fall-back's promise under injected faults, counted where a user would see it.

Redis slow or gone never fails an enqueue, never loses a job and never runs a job twice.
Each scenario puts a :class:`FaultProxy` between every ILS process and Redis (the test's
producer and real ``ils worker`` processes), injects one kind of fault, and counts the
side effects at a real SMTP server (one message per job, by Message-ID) and in the
stores: jobs in both Redis and the local store, e-mails delivered twice, e-mails lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ils.db.engine import session_factory
from ils.jobs.model import JobRef
from ils.jobs.outbox import HELD
from ils.jobs.system import JobSystem
from tests.conftest import delete_prefix
from tests.faults.load import CpuHogs
from tests.faults.proxy import FaultProxy
from tests.faults.redis_server import PrivateRedis
from tests.faults.smtp import SmtpRecorder
from tests.faults.wait import eventually, still
from tests.workers.support import Network, build_network
from tests.workers.test_email_processes import settings_from

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    """A producer system in this process and ``ils worker`` processes beside it, all
    reaching Redis through ``proxy`` and sharing one SQLite file."""

    tmp: Path
    env: dict[str, str]
    proxy: FaultProxy
    system: JobSystem
    network: Network
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, name: str, *extra: str) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "ils", "worker", "--queues", "email", *extra],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.tmp.glob("*.log")
        )

    async def jobs_by_store(self, job_ids: set[str]) -> tuple[set[str], set[str]]:
        """Which of ``job_ids`` are in Redis (one pipelined EXISTS each), and which in
        the local store (one query)."""
        redis = self.system.redis
        assert redis is not None
        ids = sorted(job_ids)
        bull = redis._bull("email")
        async with redis._shared().pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(bull.job_key(job_id))
            found = await pipe.execute()
        in_redis = {job_id for job_id, hit in zip(ids, found, strict=True) if hit}
        async with self.system.engine.connect() as conn:
            rows = await conn.execute(text("SELECT id FROM ils_jobs WHERE queue = 'email'"))
            local = {str(row[0]) for row in rows} & job_ids
        return in_redis, local

    async def held(self) -> int:
        return (await self.system.producer.outbox.held()).count


def _env(tmp: Path, proxy: FaultProxy, prefix: str, smtp: SmtpRecorder | None) -> dict[str, str]:
    env = {
        "ILS_DATA_DIR": str(tmp / "var"),
        "ILS_REDIS_URL": proxy.url,
        "ILS_REDIS_PREFIX": prefix,
        "ILS_LOCAL_POLL_INTERVAL_MS": "50",
        "ILS_OUTBOX_SWEEP_INTERVAL_S": "0.5",
        "ILS_REDIS_PROBE_INTERVAL_S": "0.5",
        "ILS_SHUTDOWN_GRACE_S": "5",
        "ILS_WORKER_HEARTBEAT_S": "2",
        "ILS_QUEUES__EMAIL__RATE_LIMIT_MAX": "100000",
        "ILS_QUEUES__EMAIL__RATE_LIMIT_DURATION_MS": "1000",
        "ILS_QUEUES__EMAIL__LOCK_DURATION_MS": "3000",
        "ILS_QUEUES__EMAIL__STALLED_INTERVAL_MS": "1000",
        "ILS_QUEUES__EMAIL__BACKOFF_DELAY_MS": "200",
        "ILS_QUEUES__EMAIL__ATTEMPTS": "20",
    }
    if smtp is not None:
        env |= {
            "ILS_SMTP__HOST": smtp.host,
            "ILS_SMTP__PORT": str(smtp.port),
            "ILS_SMTP__SECURITY": "none",
        }
    return env


@asynccontextmanager
async def world(
    tmp: Path,
    upstream: str,
    prefix: str,
    smtp: SmtpRecorder | None = None,
    **overrides: str,
) -> AsyncIterator[World]:
    with FaultProxy(upstream) as proxy:
        env = _env(tmp, proxy, prefix, smtp) | overrides
        system = await JobSystem.open(settings_from(env))
        w: World | None = None
        try:
            network = await build_network(session_factory(system.engine))
            w = World(tmp, env, proxy, system, network)
            yield w
        finally:
            proxy.heal()
            for proc in w.workers if w is not None else []:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in w.workers if w is not None else []:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            await system.close()


@contextmanager
def captured(logger: str) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.INFO)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield records
    finally:
        target.removeHandler(handler)


async def enqueue_paced(
    w: World, count: int, per_s: float, during: Callable[[int], Any] | None = None
) -> list[JobRef]:
    """Queue ``count`` general notifications at ``per_s``; ``during(i)`` runs before the
    i-th (faults are switched there)."""
    refs: list[JobRef] = []
    start = time.monotonic()
    for i in range(count):
        if during is not None:
            maybe = during(i)
            if asyncio.iscoroutine(maybe):
                await maybe
        refs.append(
            await w.system.helpers.queue_general_notification_email(
                w.network.orderer.id, f"Notice {i}", "Your lenses are on their way."
            )
        )
        delay = start + (i + 1) / per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return refs


async def all_delivered_once(w: World, smtp: SmtpRecorder, count: int, timeout: float) -> None:
    """Every job's e-mail arrived, none twice, and none more arrives for a while."""
    try:
        await eventually(lambda: len(smtp.by_message_id()) >= count, timeout)
        await still(lambda: smtp.count() > count, 2.0)  # no late second copy
    except AssertionError:
        raise AssertionError(
            f"{len(smtp.by_message_id())} of {count} delivered, duplicates "
            f"{smtp.duplicates()}\n{w.logs()}"
        ) from None
    assert len(smtp.by_message_id()) == count
    assert smtp.duplicates() == {}
    assert smtp.count() == count


async def no_job_in_both_stores(w: World, refs: list[JobRef]) -> None:
    await eventually(lambda: _held_zero(w), 60, message="held jobs were not resolved")
    in_redis, local = await w.jobs_by_store({ref.job_id for ref in refs})
    assert in_redis & local == set()


async def _held_zero(w: World) -> bool:
    return await w.held() == 0


async def test_load_is_not_an_outage(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """5,000 enqueues from 50 tasks beside two CPU hogs, Redis healthy: no job in both
    stores, at least 99.9 % in Redis, and no outage declared or logged."""
    try:
        with captured("ils.jobs.gate") as logged:
            async with world(tmp_path, redis_url, redis_prefix) as w:
                refs: list[JobRef] = []

                async def lane(lane_no: int) -> None:
                    for i in range(100):
                        refs.append(
                            await w.system.helpers.queue_general_notification_email(
                                w.network.orderer.id, f"Lane {lane_no} #{i}", "Body."
                            )
                        )

                t0 = time.perf_counter()
                with CpuHogs(2) as hogs:
                    await eventually(hogs.all_busy, 10)
                    await asyncio.gather(*(lane(n) for n in range(50)))
                took = time.perf_counter() - t0
                held_now = sum(1 for ref in refs if ref.store == HELD)
                print(f"5,000 enqueues in {took:.1f} s, {held_now} held")
                assert len(refs) == 5_000
                await no_job_in_both_stores(w, refs)
                ids = {ref.job_id for ref in refs}
                in_redis, local = await w.jobs_by_store(ids)
                assert ids <= in_redis | local
                assert len(ids & in_redis) >= 0.999 * len(ids), (len(in_redis), len(local))
                assert w.system.gate is not None
                assert w.system.gate.confirmed_outages == 0
                held = sum(1 for ref in refs if ref.store == HELD)
                health = await w.system.monitor.health()
                assert sum(health["fallback"]["resolved"].values()) == held
        unavailable = [r for r in logged if "unavailable" in r.getMessage()]
        assert unavailable == []
    finally:
        await delete_prefix(redis_url, redis_prefix)


@pytest.mark.parametrize("pause_ms", [60, 300])
async def test_redis_pausing_sends_each_email_once(
    tmp_path: Path, redis_url: str, redis_prefix: str, smtp_recorder: SmtpRecorder, pause_ms: int
) -> None:
    """500 e-mails, two worker processes, Redis stalling ``pause_ms`` every 0.5 s."""
    try:
        async with world(tmp_path, redis_url, redis_prefix, smtp_recorder) as w:
            w.start_worker("w1")
            w.start_worker("w2")
            w.proxy.periodic_pause(0.5, pause_ms)
            refs = await enqueue_paced(w, 500, 50)
            await all_delivered_once(w, smtp_recorder, 500, 120)
            w.proxy.stop_periodic_pause()
            await no_job_in_both_stores(w, refs)
            assert len({ref.job_id for ref in refs}) == 500
    finally:
        await delete_prefix(redis_url, redis_prefix)


async def test_redis_killed_and_restarted_from_its_aof(
    tmp_path: Path,
    private_redis: PrivateRedis,
    smtp_recorder: SmtpRecorder,
) -> None:
    """Redis SIGKILLed mid-burst and restarted from its append-only file: every e-mail
    once, every held job resolved, and health says how."""
    prefix = "ilsfault"
    async with world(tmp_path, private_redis.url, prefix, smtp_recorder) as w:
        w.start_worker("w1")
        w.start_worker("w2")

        async def fault(i: int) -> None:
            if i == 150:
                private_redis.kill9()
            if i == 300:
                await asyncio.to_thread(private_redis.restart)

        refs = await enqueue_paced(w, 450, 50, fault)
        await all_delivered_once(w, smtp_recorder, 450, 180)
        await no_job_in_both_stores(w, refs)
        health = await w.system.monitor.health()
        held = sum(1 for ref in refs if ref.store == HELD)
        assert health["fallback"]["held_jobs"] == 0
        assert sum(health["fallback"]["resolved"].values()) == held
        assert health["fallback"]["redis_up"] is True
        assert {ref.store for ref in refs} >= {"redis", "local"}


async def test_black_hole_then_healed(
    tmp_path: Path, redis_url: str, redis_prefix: str, smtp_recorder: SmtpRecorder
) -> None:
    """Redis unreachable without an answer for 60 s: no enqueue waits on Redis longer
    than its budget, and every e-mail goes out once."""
    budget_ms = 25
    try:
        async with world(tmp_path, redis_url, redis_prefix, smtp_recorder) as w:
            w.start_worker("w1")
            w.start_worker("w2")
            local_write_s: list[float] = []
            producer = w.system.producer
            real_hold, real_add = producer.outbox.hold, producer.local.add

            async def timed_hold(*args: Any, **kwargs: Any) -> None:
                t0 = time.perf_counter()
                try:
                    await real_hold(*args, **kwargs)
                finally:
                    local_write_s.append(time.perf_counter() - t0)

            async def timed_add(*args: Any, **kwargs: Any) -> str:
                t0 = time.perf_counter()
                try:
                    return await real_add(*args, **kwargs)
                finally:
                    local_write_s.append(time.perf_counter() - t0)

            producer.outbox.hold = timed_hold  # type: ignore[method-assign]
            producer.local.add = timed_add  # type: ignore[method-assign]
            waits_on_redis: list[float] = []
            refs: list[JobRef] = []
            hole_s = 60.0
            started = time.monotonic()
            while time.monotonic() - started < hole_s + 10:
                elapsed = time.monotonic() - started
                w.proxy.blackhole(5 <= elapsed < 5 + hole_s)
                before = len(local_write_s)
                t0 = time.perf_counter()
                refs.append(
                    await w.system.helpers.queue_general_notification_email(
                        w.network.orderer.id, f"Hole {len(refs)}", "Body."
                    )
                )
                total = time.perf_counter() - t0
                waits_on_redis.append(total - sum(local_write_s[before:]))
                await asyncio.sleep(0.1)
            w.proxy.blackhole(False)
            slowest_ms = max(waits_on_redis) * 1000
            # The budget, plus what asyncio needs to notice it ran out.
            assert slowest_ms < budget_ms + 15, slowest_ms
            await all_delivered_once(w, smtp_recorder, len(refs), 180)
            await no_job_in_both_stores(w, refs)
            assert {ref.store for ref in refs} >= {"redis", "local"}
    finally:
        await delete_prefix(redis_url, redis_prefix)


async def test_one_rate_limit_across_both_stores(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """A limit of 10 a second, 3 worker processes, 200 jobs, Redis gone in the middle:
    every start, from either store, was counted in the one limiter window, and no
    window admitted more than 10.

    Each start records the window the limiter counted it in (``rate_window_ms``):
    windows cannot be rebuilt from start times alone, since a window may open with a
    token that started nothing (a Redis fetch cut off by the outage).
    """
    record = tmp_path / "starts.log"
    try:
        async with world(
            tmp_path,
            redis_url,
            redis_prefix,
            ILS_QUEUES__EMAIL__RATE_LIMIT_MAX="10",
            ILS_QUEUES__EMAIL__RATE_LIMIT_DURATION_MS="1000",
            ILS_TEST_STARTS=str(record),
        ) as w:
            for n in range(3):
                w.start_worker(f"w{n}", "--handlers", "tests.faults.hooks:register")

            def starts() -> list[tuple[int, str, str, str, str]]:
                if not record.exists():
                    return []
                rows = [line.split() for line in record.read_text().splitlines()]
                return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows if len(r) == 5]

            async def fault(i: int) -> None:
                if i == 60:
                    w.proxy.refuse(True, drop_existing=True)
                if i == 130:
                    w.proxy.refuse(False)

            await enqueue_paced(w, 200, 20, fault)
            try:
                await eventually(lambda: len({s[1] for s in starts()}) >= 200, 120)
            except AssertionError:
                raise AssertionError(f"{len(starts())} started\n{w.logs()}") from None
            seen = starts()
            stores = {s[2] for s in seen}
            assert stores == {"redis", "local"}, stores
            uncounted = [s for s in seen if s[4] == "None"]
            assert uncounted == [], uncounted  # every start went through the limiter
            per_window = Counter(int(s[4]) for s in seen)
            assert max(per_window.values()) <= 10, sorted(per_window.items())
            # A window opens only after the previous one ended (BullMQ's fixed window).
            opened = sorted(per_window)
            assert all(b - a >= 1000 for a, b in itertools.pairwise(opened)), opened
            # A start is never dated before its window opened.
            assert all(s[0] >= int(s[4]) for s in seen)
            assert len(seen) == len({s[1] for s in seen})  # each job started once
    finally:
        await delete_prefix(redis_url, redis_prefix)
