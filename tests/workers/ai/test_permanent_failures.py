"""AI jobs that retrying cannot fix fail at once (issue 23).

A daily briefing of 0001-01-01 was accepted and then retried on ``OverflowError: date
value out of range`` until its attempts ran out. Now a day outside the years the
platform holds data for, or a date overflow anywhere in a handler, fails the job on
its first attempt with a reason naming the problem; a briefing of an ordinary day
still completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind
from ils.errors import PermanentJobError
from ils.jobs.model import JobState
from ils.jobs.payloads.ai import DailyBriefingJob, InsightGeneration
from ils.testing import TestSystem, open_test_system
from ils.workers.ai import AIWorker, InlineOffload
from ils.workers.ai.bad_input import permanent_on_overflow

#: Three attempts without back-off or rate limit: a retried job would show it at once.
RETRYING: dict[str, Any] = {"attempts": 3, "backoff_delay_ms": 0, "rate_limit_max": 0}


async def _lab(ts: TestSystem) -> str:
    async with session_factory(ts.system.engine)() as session, session.begin():
        lab = Company(kind=CompanyKind.LAB, name="Clear View Lab")
        session.add(lab)
        await session.flush()
        return lab.id


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "9999-12-31"])
async def test_a_briefing_of_an_impossible_day_fails_at_once(tmp_path: Path, day: str) -> None:
    async with open_test_system(tmp_path, queues={"ai": RETRYING}) as ts:
        worker = AIWorker(ts.system.worker_context(), InlineOffload(), None)
        ts.register(DailyBriefingJob, worker.daily_briefing)
        lab_id = await _lab(ts)
        ref = await ts.helpers.queue_daily_briefing(lab_id, day)

        run = await ts.run_until_idle(timeout=30)

        assert run.retried == []
        (failed,) = run.failed
        assert failed.reason is not None and f"date {day} is outside" in failed.reason
        job = await ts.job("ai", ref.job_id)
        assert (job.state, job.attempts_made) == (JobState.FAILED, 1)


async def test_an_insight_period_out_of_range_fails_at_once(tmp_path: Path) -> None:
    async with open_test_system(tmp_path, queues={"ai": RETRYING}) as ts:
        worker = AIWorker(ts.system.worker_context(), InlineOffload(), None)
        ts.register(InsightGeneration, worker.insight_generation)
        lab_id = await _lab(ts)
        await ts.helpers.queue_insight_generation(lab_id, "revenue", "0001-01-01", "0001-12-31")

        run = await ts.run_until_idle(timeout=30)

        assert run.retried == []
        (failed,) = run.failed
        assert failed.reason is not None and "periodStart 0001-01-01 is outside" in failed.reason


async def test_a_briefing_of_an_ordinary_day_still_completes(tmp_path: Path) -> None:
    async with open_test_system(tmp_path, queues={"ai": RETRYING}) as ts:
        worker = AIWorker(ts.system.worker_context(), InlineOffload(), None)
        ts.register(DailyBriefingJob, worker.daily_briefing)
        await ts.helpers.queue_daily_briefing(await _lab(ts), "2026-11-27")

        run = await ts.run_until_idle(timeout=30)

        assert len(run.completed) == 1 and run.failed == []


async def test_an_overflow_inside_a_handler_is_permanent() -> None:
    @permanent_on_overflow
    async def handler(days: int) -> int:
        return days + 1 if days < 0 else int(float("1e400") * days)

    assert await handler(-5) == -4
    with pytest.raises(PermanentJobError, match="out of range"):
        await handler(2)
