"""Fairness between companies on the shared ``ai`` queue (ils.jobs.fairness).

Company A floods 200 demand forecasts and 30 chat answers; company B then gets its
08:00 briefing (queued as the schedules queue it, with no demand class), a chat answer
and one forecast. The queue is drained in the stores' own order (``fetch``, what every
worker does), so "how long B waits" is counted in jobs started ahead of B's, on the
local store and on Redis: no clock, no sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.jobs.fairness import (
    BULK_BASE,
    HOUR_MS,
    INTERACTIVE_BASE,
    QuotaExceededError,
    fair_priority,
)
from ils.jobs.helpers import JobHelpers
from ils.jobs.model import JobRef, JobState
from ils.jobs.stores.base import JobStore
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import open_test_system
from tests.conftest import delete_prefix

A, B = "company-a", "company-b"
DAY = date(2026, 12, 5)
FLOOD = 200
#: The quotas of these tests (the defaults are 10 outstanding of each class).
MAX_OUTSTANDING = 10
NO_RATE_LIMIT = {"ai": {"rate_limit_max": 0}}


@dataclass
class Flood:
    """What A's flood got: the jobs queued, and the refusals' Retry-After."""

    accepted: list[JobRef]
    retry_after_s: list[int]


async def flood(queue_one: Callable[[], Awaitable[JobRef]], times: int) -> Flood:
    result = Flood([], [])
    for _ in range(times):
        try:
            result.accepted.append(await queue_one())
        except QuotaExceededError as refused:
            result.retry_after_s.append(refused.retry_after_s)
    return result


async def drain(store: JobStore) -> list[str]:
    """Every job id of the ai queue, in the order the store hands them to workers."""
    order: list[str] = []
    while (fetched := await store.fetch("ai", "drain-token")).job is not None:
        order.append(fetched.job.id)
    return order


def ahead(order: list[str], job: JobRef, of: list[JobRef]) -> int:
    """How many of ``of`` started before ``job``."""
    position = order.index(job.job_id)
    return len({ref.job_id for ref in of} & set(order[:position]))


async def scenario(helpers: JobHelpers, store: JobStore) -> None:
    """A floods; B's briefing, chat and run start within the bound (docs/jobs.md)."""
    forecasts = await flood(lambda: helpers.on_demand("bulk").queue_demand_forecast(A), FLOOD)
    chats = await flood(
        lambda: helpers.on_demand("interactive").queue_chat_response(
            "user-a", A, "conv-a", "msg-a"
        ),
        30,
    )
    # The quota: A's first ten of each class are queued, the rest refused with a wait.
    assert len(forecasts.accepted) == MAX_OUTSTANDING
    assert len(forecasts.retry_after_s) == FLOOD - MAX_OUTSTANDING
    assert len(chats.accepted) == MAX_OUTSTANDING
    assert min(forecasts.retry_after_s + chats.retry_after_s) >= 1

    briefing = await helpers.queue_daily_briefing(B, DAY)  # as the 08:00 schedule does
    chat = await helpers.on_demand("interactive").queue_chat_response(
        "user-b", B, "conv-b", "msg-b"
    )
    run = await helpers.on_demand("bulk").queue_demand_forecast(B)

    order = await drain(store)
    assert len(order) == 2 * MAX_OUTSTANDING + 3
    everything_of_a = forecasts.accepted + chats.accepted
    # Scheduled work keeps its place whatever was queued before it.
    assert order.index(briefing.job_id) == 0
    # B's first job of a class waits behind at most one job of A's of that class.
    assert ahead(order, chat, chats.accepted) <= 1
    assert ahead(order, run, forecasts.accepted) <= 1
    # ... and in all behind at most the better classes' jobs plus that one.
    assert order.index(chat.job_id) <= 1 + 1
    assert ahead(order, run, everything_of_a) <= len(chats.accepted) + 1


async def test_a_flood_delays_another_company_by_at_most_one_job_local(tmp_path: Path) -> None:
    async with open_test_system(tmp_path, clock=ManualClock(), queues=NO_RATE_LIMIT) as ts:
        await scenario(ts.helpers, ts.system.local)


async def test_a_flood_delays_another_company_by_at_most_one_job_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        queues=NO_RATE_LIMIT,
    )
    system = await JobSystem.open(settings)
    try:
        assert system.gate is not None and system.redis is not None
        assert await system.gate.check()
        await scenario(system.helpers, system.redis)
        # Every job went to Redis: the local store holds none of them.
        assert sum((await system.local.counts("ai")).values()) == 0
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_jobs_in_the_outbox_count_until_redis_has_them(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """Redis mode, enqueued in a transaction (as the API does): the jobs wait in the
    outbox until the commit; they count there, then in Redis, never zero in between."""
    settings = Settings(
        _env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_prefix=redis_prefix
    )
    system = await JobSystem.open(settings)
    try:
        assert system.gate is not None and await system.gate.check()

        async def run_one(session: AsyncSession | None = None) -> JobRef:
            return await system.helpers.on_demand("bulk").queue_demand_forecast(A, session=session)

        async with session_factory(system.engine)() as session, session.begin():
            refs = [await run_one(session) for _ in range(MAX_OUTSTANDING)]
            assert {ref.store for ref in refs} == {"outbox"}
            with pytest.raises(QuotaExceededError):
                await run_one(session)
        await system.producer.outbox.drain_tasks()
        await system.producer.outbox.relay()
        assert await system.producer.outbox.pending() == 0
        assert system.redis is not None
        assert (await system.redis.counts("ai"))[JobState.WAITING] == MAX_OUTSTANDING
        with pytest.raises(QuotaExceededError):
            await run_one()
        # Another company is counted apart.
        assert (await system.helpers.on_demand("bulk").queue_demand_forecast(B)).store == "redis"
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_levels_follow_what_the_company_has_outstanding(tmp_path: Path) -> None:
    """The k-th outstanding job of a company gets base + k; a job that ran frees its
    level; another company starts again at the base; platform work keeps its type's."""
    async with open_test_system(tmp_path, clock=ManualClock(), queues=NO_RATE_LIMIT) as ts:
        helpers, store = ts.helpers, ts.system.local
        first = [await helpers.on_demand("bulk").queue_demand_forecast(A) for _ in range(3)]
        other = await helpers.on_demand("bulk").queue_demand_forecast(B)
        chat = await helpers.on_demand("interactive").queue_chat_response("u", A, "c", "m")
        system_job = await helpers.queue_demand_forecast(A)

        async def priority(ref: JobRef) -> int:
            record = await store.get_job("ai", ref.job_id)
            assert record is not None
            return record.priority

        assert [await priority(ref) for ref in first] == [BULK_BASE, BULK_BASE + 1, BULK_BASE + 2]
        assert await priority(other) == BULK_BASE
        assert await priority(chat) == INTERACTIVE_BASE
        assert await priority(system_job) == 3  # the job type's own, ahead of both classes

        # The system job starts first, then the chat, then A's level-0 run; two of A's
        # stay outstanding, so A's next run is at level 2.
        claimed = [(await store.fetch("ai", "t")).job for _ in range(3)]
        assert [job.id for job in claimed if job] == [
            system_job.job_id,
            chat.job_id,
            first[0].job_id,
        ]
        for job in claimed:
            assert job is not None
            await store.complete("ai", job, None)
        assert await priority(await helpers.on_demand("bulk").queue_demand_forecast(A)) == (
            BULK_BASE + 2
        )


async def test_the_hourly_quota_refuses_until_the_oldest_job_is_an_hour_old(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    fairness = {"queues": {"ai": {"bulk": {"max_outstanding": 2, "per_hour": 3}}}}
    async with open_test_system(
        tmp_path, clock=clock, queues=NO_RATE_LIMIT, fairness=fairness
    ) as ts:
        helpers, store = ts.helpers, ts.system.local

        async def run_one() -> JobRef:
            return await helpers.on_demand("bulk").queue_anomaly_detection(B, "revenue")

        await run_one()
        await run_one()
        with pytest.raises(QuotaExceededError) as busy:
            await run_one()  # two outstanding
        assert busy.value.retry_after_s == 60
        for _ in range(2):
            job = (await store.fetch("ai", "t")).job
            assert job is not None
            await store.complete("ai", job, None)
        clock.advance(600_000)
        await run_one()  # the third of the hour
        with pytest.raises(QuotaExceededError) as hourly:
            await run_one()
        # The oldest of the hour was queued 10 minutes ago: its place frees in 50.
        assert hourly.value.retry_after_s == (HOUR_MS - 600_000) // 1000
        clock.advance(HOUR_MS - 600_000)
        await run_one()


async def test_without_the_policy_the_flood_is_served_first(tmp_path: Path) -> None:
    """``enabled=false`` is the FIFO of before: B's briefing waits behind all of A's."""
    fairness = {"enabled": False}
    async with open_test_system(
        tmp_path, clock=ManualClock(), queues=NO_RATE_LIMIT, fairness=fairness
    ) as ts:
        forecasts = await flood(
            lambda: ts.helpers.on_demand("bulk").queue_demand_forecast(A), FLOOD
        )
        briefing = await ts.helpers.queue_daily_briefing(B, DAY)
        order = await drain(ts.system.local)
        assert len(forecasts.accepted) == FLOOD
        assert order.index(briefing.job_id) == FLOOD


def test_fair_priority_stays_in_its_band() -> None:
    assert fair_priority("interactive", 0) == INTERACTIVE_BASE
    assert fair_priority("interactive", 10**6) == BULK_BASE - 1
    assert fair_priority("bulk", -1) == BULK_BASE


async def test_jobs_queued_earlier_in_the_same_transaction_count_local(tmp_path: Path) -> None:
    """Local mode writes a transaction's jobs just before its commit: they count anyway."""
    async with open_test_system(tmp_path, clock=ManualClock()) as ts:
        async with session_factory(ts.system.engine)() as session, session.begin():
            for _ in range(MAX_OUTSTANDING):
                await ts.helpers.on_demand("bulk").queue_demand_forecast(A, session=session)
            with pytest.raises(QuotaExceededError):
                await ts.helpers.on_demand("bulk").queue_demand_forecast(A, session=session)
        assert (await ts.system.local.counts("ai"))[JobState.WAITING] == MAX_OUTSTANDING


def test_quotas_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILS_FAIRNESS__QUEUES__AI__BULK__PER_HOUR", "20")
    fairness = Settings(_env_file=None).fairness
    assert fairness.queues["ai"].bulk.per_hour == 20
    assert fairness.queues["ai"].bulk.max_outstanding == MAX_OUTSTANDING
    assert fairness.queues["ai"].interactive.max_outstanding == MAX_OUTSTANDING
