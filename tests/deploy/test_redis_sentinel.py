"""Redis behind Sentinel: jobs go to whichever server the sentinels name as master, and
a fail-over while jobs run loses none of them.

The system is given only the sentinels (``ILS_REDIS_SENTINELS``); each new connection
asks them for the master. Two ways a master goes away:

* SIGKILL: the sentinels agree it is down (quorum 2 of 3) and promote the replica.
  Until then connections are refused, the gate opens and new jobs go to the local
  store; the work in Redis waits for the new master.
* ``SENTINEL FAILOVER``: the replica is promoted while the old master still runs. The
  sentinels demote the old master only some seconds later (Redis waits 4 publish
  periods, about 8 s), and whatever was written to it meanwhile is thrown away when
  it resyncs. Jobs it had finished run again on the new master (at least once), which
  is why the tests count distinct jobs. With Redis's defaults an add acknowledged by
  the old master in that window is lost, so none is made then; with
  ``min-replicas-to-write 1`` the old master refuses writes (NOREPLICAS), adds made in
  the window are held and resolved into the new master, and none is lost.

Every job must end completed, counted one by one. Waits are on conditions only.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.model import JobRef, JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.stores.redis.connect import CLIENT_NAME
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.settings import Settings
from tests.deploy.checks import signal_round_trip
from tests.deploy.conftest import SentinelFactory
from tests.deploy.servers import SERVICE, SentinelGroup, ask, plain_client, wait_for
from tests.faults.wait import eventually

pytestmark = [pytest.mark.redis]

FAST = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "stalled_interval_ms": 500}


def _settings(tmp_path: Path, group: SentinelGroup, concurrency: int = 4) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        redis_sentinels=group.sentinels_setting,
        redis_sentinel_service=SERVICE,
        # No rate limit: the e-mail queue's (100 a minute) would hold most of the jobs.
        queues={"email": {**FAST, "concurrency": concurrency, "rate_limit_max": 0}},
        local_poll_interval_ms=20,
        redis_probe_interval_s=0.2,
        # Adds before the fail-over must land in Redis, not be held by the 25 ms budget.
        redis_enqueue_timeout_ms=5000,
    )


class Work:
    """The job system with workers running a handler that takes ``job_s`` per job."""

    def __init__(self, system: JobSystem, job_s: float) -> None:
        self.system = system
        self.job_s = job_s
        self.ran: set[str] = set()
        self.runs = 0
        self.refs: list[JobRef] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _handler(self, payload: Any, ctx: JobContext) -> None:
        await asyncio.sleep(self.job_s)  # the job's work
        self.runs += 1
        self.ran.add(ctx.job_id)

    def start(self) -> None:
        registry = HandlerRegistry(self.system.job_types)
        registry.register(OrderConfirmationEmail, self._handler)
        self._task = asyncio.create_task(
            run_workers(self.system, ["email"], registry, stop=self._stop)
        )

    async def add(self, count: int, tag: str) -> None:
        for i in range(count):
            ref = await self.system.helpers.queue_order_confirmation_email(f"{tag}-{i}", "u")
            self.refs.append(ref)

    async def completed(self) -> int:
        """How many added jobs are completed, looked up one by one in every store."""
        done = 0
        for ref in self.refs:
            for store in self.system.stores():
                try:
                    record = await store.get_job("email", ref.job_id)
                except Exception:  # the store is between masters: ask again later
                    return -1
                if record is not None:
                    done += record.state is JobState.COMPLETED
                    break
        return done

    async def all_completed(self, count: int) -> None:
        """Wait until ``count`` jobs were added and each is completed in some store, and
        every one of them ran (some may have run twice: at least once, never lost)."""
        assert len(self.refs) == count
        try:
            await eventually(lambda: _all_done(self, count), timeout=60, interval=0.2)
        except AssertionError:
            raise AssertionError(await self.report()) from None
        assert self.ran == {ref.job_id for ref in self.refs}

    async def report(self) -> str:
        """Where the jobs are (for assertion messages)."""
        states: dict[str, int] = {}
        for ref in self.refs:
            found = "missing"
            for store in self.system.stores():
                try:
                    record = await store.get_job("email", ref.job_id)
                except Exception as exc:
                    found = f"{store.kind}:error {type(exc).__name__}"
                    break
                if record is not None:
                    found = f"{store.kind}:{record.state.value}"
                    break
            states[found] = states.get(found, 0) + 1
        return (
            f"states {states}; runs {self.runs}, distinct {len(self.ran)}; "
            f"redis in use {self.system.redis_in_use}"
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def test_jobs_run_through_sentinel(tmp_path: Path, make_sentinels: SentinelFactory) -> None:
    group = make_sentinels(sentinels=1, quorum=1)
    system = await JobSystem.open(_settings(tmp_path, group))
    work = Work(system, job_s=0.001)
    try:
        assert system.redis_in_use
        work.start()
        await work.add(20, "s")
        assert {ref.store for ref in work.refs} == {"redis"}
        await work.all_completed(20)
        # The jobs are on the master the sentinel named, and came to the replica.
        key = f"{system.settings.redis_prefix}:{system.catalogue['email'].name}:completed"
        for port in (group.master_port, group.replica_port):
            check = partial(_count_is, port, key, 20)
            await asyncio.to_thread(wait_for, check, 5, f"jobs on {port}")
        master = aioredis.Redis(port=group.master_port)
        try:
            await signal_round_trip(system, master)
        finally:
            await master.aclose()
    finally:
        await work.stop()
        await system.close()


async def _all_done(work: Work, count: int) -> bool:
    return await work.completed() == count


def _count_is(port: int, key: str, count: int) -> bool:
    return ask(port, lambda client: client.zcard(key)) == count


@pytest.mark.slow
async def test_master_killed_while_jobs_run_loses_none(
    tmp_path: Path, make_sentinels: SentinelFactory
) -> None:
    group = make_sentinels(sentinels=3, quorum=2)
    system = await JobSystem.open(_settings(tmp_path, group))
    work = Work(system, job_s=0.05)
    try:
        await work.add(200, "before")
        _replicated(group.master_port)
        work.start()
        await eventually(lambda: work.runs >= 30, timeout=15, message="no job started")

        group.master.kill()
        assert work.runs < 200, "the fail-over must happen while jobs run"
        await work.add(50, "during")  # the master is gone: these go to the local store
        assert any(ref.store == "local" for ref in work.refs[200:])
        await asyncio.to_thread(group.wait_failed_over)

        await work.all_completed(250)
        assert system.redis_in_use  # back on Redis: the new master
    finally:
        await work.stop()
        await system.close()


@pytest.mark.slow
@pytest.mark.parametrize("min_replicas", [False, True], ids=["default", "min-replicas-to-write"])
async def test_sentinel_failover_while_jobs_run_loses_none(
    tmp_path: Path, make_sentinels: SentinelFactory, min_replicas: bool
) -> None:
    data_args = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
    group = make_sentinels(sentinels=1, quorum=1, data_args=data_args if min_replicas else ())
    system = await JobSystem.open(_settings(tmp_path, group))
    work = Work(system, job_s=0.05)
    try:
        await work.add(200, "before")
        _replicated(group.master_port)
        work.start()
        await eventually(lambda: work.runs >= 30, timeout=15, message="no job started")

        with plain_client(group.sentinel_ports[0]) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        assert work.runs < 200, "the fail-over must happen while jobs run"
        await asyncio.to_thread(group.wait_failed_over)
        if min_replicas:
            # The old master, still up and still written to over connections made
            # before, refuses writes (NOREPLICAS): adds are held, then resolved into the
            # new master once connections move there.
            await work.add(50, "window")
            assert "redis" not in {ref.store for ref in work.refs[200:]}
        # Until the old master is demoted (some seconds), earlier connections still
        # reach it; what it accepted meanwhile is thrown away when it resyncs.
        await asyncio.to_thread(
            wait_for, lambda: group.role(group.master_port) == "slave", 30, "old master demoted"
        )
        if not min_replicas:
            await work.add(50, "after")
            assert {ref.store for ref in work.refs[200:]} == {"redis"}

        await work.all_completed(250)
    finally:
        await work.stop()
        await system.close()


@pytest.mark.slow
async def test_connections_leave_an_old_master_before_it_is_demoted(
    tmp_path: Path, make_sentinels: SentinelFactory
) -> None:
    """After ``SENTINEL FAILOVER`` the old master runs on, writable, until the sentinels
    demote it (about 8 s). Whatever a worker does there meanwhile is thrown away when
    it resyncs, and the jobs it finished run again: so every connection of the process
    must leave it within the master check, long before the demotion. Before the watch,
    they stayed until the demotion (and 250 jobs ran 402-558 times in the test above)."""
    group = make_sentinels(sentinels=1, quorum=1)
    system = await JobSystem.open(_settings(tmp_path, group))
    work = Work(system, job_s=0.01)
    old = group.master_port
    try:
        work.start()
        await work.add(20, "before")
        await work.all_completed(20)
        assert _ils_connections(old) >= 3, "the store, the waits and the bus use the master"
        # A fail-over loses what the replica has not got yet (on a busy machine the
        # first jobs, before the replica acknowledged its first sync), and this test is
        # about what comes after it.
        _replicated(old)

        with plain_client(group.sentinel_ports[0]) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        await asyncio.to_thread(group.wait_failed_over)
        await asyncio.to_thread(group.wait_switched)  # from here on the watch can see it
        await eventually(
            lambda: _ils_connections(old) == 0,
            timeout=3,
            message=f"ILS connections still on the old master: {_ils_connections(old)}",
        )
        assert group.role(old) == "master", "left before the demotion, not because of it"

        await work.add(20, "after")  # and the jobs go on, on the new master
        assert {ref.store for ref in work.refs[20:]} == {"redis"}
        await work.all_completed(40)
        assert _ils_connections(group.replica_port) >= 3
        assert group.role(old) == "master" or _ils_connections(old) == 0
    finally:
        await work.stop()
        await system.close()


def _ils_connections(port: int) -> int:
    """How many connections named as ILS names its own are open on the server."""
    clients: list[dict[str, Any]] = ask(port, lambda client: client.client_list()) or []
    return sum(1 for client in clients if client.get("name") == CLIENT_NAME)


def _replicated(master_port: int) -> None:
    """Wait until the replica has every write the master acknowledged so far (a write
    of our own, then WAIT for one replica on the same connection)."""
    with plain_client(master_port) as client:
        pipe = client.pipeline(transaction=False)
        pipe.set("ilstest:replication-mark", "1")
        pipe.execute_command("WAIT", 1, 5000)
        _, replicas = pipe.execute()
    assert replicas >= 1, "the replica did not acknowledge the jobs"
