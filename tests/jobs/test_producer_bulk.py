"""``Producer.enqueue_many``: many jobs of one queue in one round trip (issue 21).

A schedule's fan-out to every company, or a batch of invoices, queues tens to
thousands of jobs at once; one by one each costs a round trip to Redis or a statement
in the local store. Checked by counting the store calls the producer makes, and by
reading every job back from the store it landed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ils.errors import InvalidPayloadError
from ils.jobs.model import JobOptions, JobState
from ils.jobs.payloads.ai import DailyBriefingJob
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import delete_prefix

COMPANIES = [f"company-{n:03d}" for n in range(120)]


def briefings(system: JobSystem) -> list[tuple[str, DailyBriefingJob, JobOptions]]:
    job_type = system.job_types.get("ai", "daily-briefing")
    jobs = []
    for company in COMPANIES:
        payload = DailyBriefingJob(company_id=company, date="2026-12-05")
        jobs.append(("daily-briefing", payload, job_type.options_for(payload, company_id=company)))
    return jobs


def count_calls(monkeypatch: pytest.MonkeyPatch, store: Any, *names: str) -> dict[str, int]:
    """Count calls of ``store``'s methods ``names`` (they still run)."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(store, name)

        # Not async itself: it hands back what the method returns (a coroutine, or
        # ``start_add_bulk``'s future), so it serves both kinds of method.
        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return _original(*args)

        monkeypatch.setattr(store, name, counted)
    return calls


async def test_local_mode_queues_a_batch_in_one_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        calls = count_calls(monkeypatch, system.local, "add", "add_bulk")
        refs = await system.producer.enqueue_many("ai", briefings(system))
        assert calls == {"add": 0, "add_bulk": 1}
        assert len({ref.job_id for ref in refs}) == len(COMPANIES)
        assert {ref.store for ref in refs} == {system.local.kind}
        for ref, company in zip(refs, COMPANIES, strict=True):
            job = await system.local.get_job("ai", ref.job_id)
            assert job is not None and job.state is JobState.WAITING
            assert job.data["companyId"] == company
    finally:
        await system.close()


async def test_local_mode_in_a_session_is_part_of_its_transaction(tmp_path: Path) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        async with system.local.transactions.write() as session:
            refs = await system.producer.enqueue_many("ai", briefings(system), session=session)
            await session.rollback()
        assert all([await system.local.get_job("ai", ref.job_id) is None for ref in refs])
        async with system.local.transactions.write() as session:
            refs = await system.producer.enqueue_many("ai", briefings(system), session=session)
        assert (await system.local.counts("ai"))[JobState.WAITING] == len(COMPANIES)
    finally:
        await system.close()


async def test_redis_mode_queues_a_batch_in_one_round_trip(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        # Not a test of the enqueue budget (the next test is): a loaded CI machine must
        # not hold the batch in the outbox, since it is asserted to be in Redis.
        redis_enqueue_timeout_ms=5000,
    )
    system = await JobSystem.open(settings)
    try:
        assert system.redis is not None
        calls = count_calls(monkeypatch, system.redis, "start_add_bulk")
        refs = await system.producer.enqueue_many("ai", briefings(system))
        assert calls == {"start_add_bulk": 1}
        assert {ref.store for ref in refs} == {system.redis.kind}
        assert (await system.redis.counts("ai"))[JobState.WAITING] == len(COMPANIES)
        job = await system.redis.get_job("ai", refs[-1].job_id)
        assert job is not None and job.data["companyId"] == COMPANIES[-1]
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_one_bad_job_queues_none(tmp_path: Path) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        jobs = briefings(system)
        name, payload, options = jobs[7]
        jobs[7] = (name, payload, JobOptions(priority=-1, company_id=options.company_id))
        with pytest.raises(InvalidPayloadError):
            await system.producer.enqueue_many("ai", jobs)
        assert (await system.local.counts("ai"))[JobState.WAITING] == 0
    finally:
        await system.close()


async def test_helpers_queue_many_validates_every_row_then_queues_them_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``JobHelpers.queue_many``: a batch of invoices' PDFs in one insert; a bad row
    is named by its index and queues none of the batch."""
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        rows: list[dict[str, object]] = [{"invoice_id": f"inv-{n}"} for n in range(50)]
        with pytest.raises(InvalidPayloadError) as refused:
            await system.helpers.queue_many("pdf", "invoice", [*rows, {"invoice_id": ""}])
        assert any(problem.startswith("row 50: ") for problem in refused.value.problems)
        assert (await system.local.counts("pdf"))[JobState.WAITING] == 0
        calls = count_calls(monkeypatch, system.local, "add", "add_bulk")
        refs = await system.helpers.queue_many("pdf", "invoice", rows)
        assert calls == {"add": 0, "add_bulk": 1}
        jobs = [await system.local.get_job("pdf", ref.job_id) for ref in refs]
        assert [job.data["invoiceId"] for job in jobs if job is not None] == [
            f"inv-{n}" for n in range(50)
        ]
    finally:
        await system.close()


async def test_a_large_batch_on_a_healthy_redis_is_not_taken_for_an_outage(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk add costs Redis about 0.1 ms a job, so 500 jobs take longer than the
    25 ms budget of one add. Before the budget grew with the batch, every such batch
    suspected an outage (probes) and held each of its jobs in the outbox, one local
    write a job: bench/peers measured 480 jobs/s for ILS's bulk enqueue against
    bullmq's 13,000. The default enqueue timeout is kept on purpose."""
    settings = Settings(
        _env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_prefix=redis_prefix
    )
    system = await JobSystem.open(settings)
    try:
        assert system.redis is not None and system.gate is not None
        suspicions: list[str] = []
        monkeypatch.setattr(system.gate, "suspect_outage", suspicions.append)
        rows: list[dict[str, object]] = [
            {"order_id": f"order-{n}", "user_id": "user-1"} for n in range(500)
        ]
        refs = await system.helpers.queue_many("email", "order-confirmation", rows)
        assert suspicions == []
        assert {ref.store for ref in refs} == {system.redis.kind}
        assert (await system.redis.counts("email"))[JobState.WAITING] == 500
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)
