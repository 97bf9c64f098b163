"""The runner drives handlers over both modes: results, failures, limits, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import ils
from ils.errors import JobFailedError, PermanentJobError
from ils.jobs.attempt import JobOutcome
from ils.jobs.banner import start_up_banner
from ils.jobs.model import JobOptions, JobState, NewJob
from ils.jobs.payloads.email import OrderConfirmationEmail, OrderShipmentEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.settings import Settings
from ils.testing import eventually
from tests.conftest import delete_prefix

FAST = {"backoff_delay_ms": 100, "lock_duration_ms": 1000, "stalled_interval_ms": 300}

SystemFactory = Callable[..., Awaitable[JobSystem]]


@pytest.fixture(params=["local", "redis"])
async def make_system(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SystemFactory]:
    """Builds job systems in local mode or Redis mode (one data dir / prefix per test)."""
    systems: list[JobSystem] = []
    redis_args: dict[str, Any] = {}
    if request.param == "redis":
        redis_args = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }

    async def factory(**queues: dict[str, Any]) -> JobSystem:
        overrides = {key: {**FAST, **queues.get(key, {})} for key in ("email", "pdf")}
        settings = Settings(
            data_dir=tmp_path, queues=overrides, local_poll_interval_ms=20, **redis_args
        )
        system = await JobSystem.open(settings)
        systems.append(system)
        return system

    yield factory
    for system in systems:
        await system.close()
    if redis_args:
        await delete_prefix(redis_args["redis_url"], redis_args["redis_prefix"])


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """:func:`ils.testing.eventually` with this file's 10 s default."""
    await eventually(check, timeout, interval=0.02, message="condition not met in time")


async def job_state(system: JobSystem, job_id: str) -> JobState | None:
    for store in system.stores():
        record = await store.get_job("email", job_id)
        if record is not None:
            return record.state
    return None


def runner_for(
    system: JobSystem, registry: HandlerRegistry, outcomes: list[JobOutcome] | None = None
) -> Runner:
    listeners = [outcomes.append] if outcomes is not None else []
    return Runner(system.stores(), [system.catalogue["email"]], registry, listeners=listeners)


async def test_handler_gets_validated_payload_and_result_is_stored(
    make_system: SystemFactory,
) -> None:
    system = await make_system()
    registry = HandlerRegistry(system.job_types)
    seen: list[Any] = []

    async def handler(payload: OrderConfirmationEmail, ctx: JobContext) -> dict[str, Any]:
        seen.append(payload)
        await ctx.progress(50)
        await ctx.log("rendered")
        return {"orderId": payload.order_id, "attempt": ctx.attempt}

    registry.register(OrderConfirmationEmail, handler)
    ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")
    runner = runner_for(system, registry)
    runner.start()
    try:
        await wait_until(lambda: _is(system, ref.job_id, JobState.COMPLETED))
    finally:
        await runner.stop(5)
    assert isinstance(seen[0], OrderConfirmationEmail)
    assert seen[0].order_id == "ord-1"
    record = await _record(system, ref.job_id)
    assert record.result == {"orderId": "ord-1", "attempt": 1}
    assert record.progress == 50
    assert record.logs == ["[attempt 1] rendered"]


async def _is(system: JobSystem, job_id: str, state: JobState) -> bool:
    return await job_state(system, job_id) is state


async def _record(system: JobSystem, job_id: str) -> Any:
    for store in system.stores():
        record = await store.get_job("email", job_id)
        if record is not None:
            return record
    raise AssertionError("job not found")


async def test_a_failed_jobs_log_line_carries_its_identifiers(
    make_system: SystemFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Log handlers can filter a job's lines by field (job id, queue, attempt,
    company), not by parsing the message; the logger is named after its module."""
    system = await make_system()
    registry = HandlerRegistry(system.job_types)

    async def handler(payload: Any, ctx: JobContext) -> None:
        raise PermanentJobError("order ord-1 no longer exists")

    registry.register(OrderConfirmationEmail, handler)
    payload = OrderConfirmationEmail(order_id="ord-1", user_id="usr-1")
    ref = await system.producer.enqueue(
        "email", "order-confirmation", payload, JobOptions(company_id="co-7")
    )
    runner = runner_for(system, registry)
    with caplog.at_level(logging.WARNING, logger="ils.jobs.consumer"):
        runner.start()
        try:
            await wait_until(lambda: _is(system, ref.job_id, JobState.FAILED))
        finally:
            await runner.stop(5)
    (line,) = [r for r in caplog.records if getattr(r, "job_id", None) == ref.job_id]
    assert line.name == "ils.jobs.consumer"
    fields = {k: getattr(line, k) for k in ("queue", "job_name", "attempt", "company_id")}
    assert fields == {
        "queue": "email",
        "job_name": "order-confirmation",
        "attempt": 1,
        "company_id": "co-7",
    }


async def test_permanent_error_fails_at_once(make_system: SystemFactory) -> None:
    system = await make_system()
    registry = HandlerRegistry(system.job_types)
    calls = 0

    async def handler(payload: Any, ctx: JobContext) -> None:
        nonlocal calls
        calls += 1
        raise PermanentJobError("order ord-1 no longer exists")

    registry.register(OrderConfirmationEmail, handler)
    ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")
    runner = runner_for(system, registry)
    runner.start()
    try:
        await wait_until(lambda: _is(system, ref.job_id, JobState.FAILED))
    finally:
        await runner.stop(5)
    record = await _record(system, ref.job_id)
    assert calls == 1
    assert record.attempts_made == 1
    assert record.failed_reason == "order ord-1 no longer exists"


async def test_retryable_error_retries_with_growing_backoff(make_system: SystemFactory) -> None:
    system = await make_system(email={"backoff_delay_ms": 150})
    registry = HandlerRegistry(system.job_types)
    started: list[float] = []

    async def handler(payload: Any, ctx: JobContext) -> None:
        started.append(time.monotonic())
        raise JobFailedError(f"smtp 451 on attempt {ctx.attempt}")

    registry.register(OrderConfirmationEmail, handler)
    ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")
    runner = runner_for(system, registry)
    runner.start()
    try:
        await wait_until(lambda: _is(system, ref.job_id, JobState.FAILED), timeout=15)
    finally:
        await runner.stop(5)
    record = await _record(system, ref.job_id)
    assert len(started) == 3  # order confirmations get 3 attempts (jobs.md)
    assert record.attempts_made == 3
    assert record.failed_reason == "smtp 451 on attempt 3"
    gaps = [b - a for a, b in itertools.pairwise(started)]
    for gap, expected in zip(gaps, (0.15, 0.3), strict=True):
        assert gap >= expected * 0.9
    assert gaps[0] < gaps[1]


async def test_job_without_handler_fails_clearly_and_worker_goes_on(
    make_system: SystemFactory,
) -> None:
    system = await make_system()
    registry = HandlerRegistry(system.job_types)
    done: list[str] = []

    async def handler(payload: Any, ctx: JobContext) -> None:
        done.append(ctx.job_id)

    registry.register(OrderShipmentEmail, handler)
    orphan = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")
    handled = await system.helpers.queue_shipment_notification_email("ord-1", "usr-1", "1Z9", "UPS")
    runner = runner_for(system, registry)
    runner.start()
    try:
        await wait_until(lambda: _is(system, handled.job_id, JobState.COMPLETED))
        await wait_until(lambda: _is(system, orphan.job_id, JobState.FAILED))
    finally:
        await runner.stop(5)
    record = await _record(system, orphan.job_id)
    assert record.attempts_made == 1
    assert "no handler" in record.failed_reason
    assert "order-confirmation" in record.failed_reason


async def test_queue_without_handlers_is_left_to_other_workers(
    make_system: SystemFactory,
) -> None:
    """run_workers claims nothing from a queue it has no handler for (a Node service or
    another worker process may have one): the job stays waiting, untouched."""
    system = await make_system()
    registry = HandlerRegistry(system.job_types)
    done: list[str] = []

    async def handler(payload: Any, ctx: JobContext) -> None:
        done.append(ctx.job_id)

    registry.register(OrderShipmentEmail, handler)
    pdf = await system.helpers.queue_order_sheet_pdf("ord-1")
    email = await system.helpers.queue_shipment_notification_email("ord-1", "usr-1", "1Z9", "UPS")
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(system, ["email", "pdf"], registry, stop=stop))
    try:
        await wait_until(lambda: _is(system, email.job_id, JobState.COMPLETED))
        await asyncio.sleep(0.3)  # several poll intervals of an (absent) pdf consumer
    finally:
        stop.set()
        await workers
    record = None
    for store in system.stores():
        record = record or await store.get_job("pdf", pdf.job_id)
    assert record is not None
    assert record.state == JobState.WAITING
    assert record.attempts_made == 0


async def test_invalid_payload_from_another_producer_fails_without_leaking(
    make_system: SystemFactory,
) -> None:
    system = await make_system()
    registry = HandlerRegistry(system.job_types)

    async def handler(payload: Any, ctx: JobContext) -> None:
        raise AssertionError("must not run")

    registry.register(OrderConfirmationEmail, handler)
    store = system.stores()[0]
    secret = "Jane Doe, DOB 1970-01-01"
    job_id = await store.add(
        "email",
        NewJob(
            "order-confirmation", {"type": "order-confirmation", "orderId": secret, "userId": "u"}
        ),
    )
    runner = runner_for(system, registry)
    runner.start()
    try:
        await wait_until(lambda: _is(system, job_id, JobState.FAILED))
    finally:
        await runner.stop(5)
    record = await _record(system, job_id)
    assert record.attempts_made == 1
    assert "orderId" in record.failed_reason
    assert secret not in record.failed_reason
    assert all(secret not in trace for trace in record.stacktrace)


async def test_concurrency_is_respected(make_system: SystemFactory) -> None:
    system = await make_system(email={"concurrency": 3})
    registry = HandlerRegistry(system.job_types)
    running = 0
    peak = 0

    async def handler(payload: Any, ctx: JobContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.15)
        running -= 1

    registry.register(OrderConfirmationEmail, handler)
    refs = [await system.helpers.queue_order_confirmation_email(f"o{i}", "u") for i in range(9)]
    outcomes: list[JobOutcome] = []
    runner = runner_for(system, registry, outcomes)
    runner.start()
    started = time.monotonic()
    try:
        await wait_until(lambda: _all_done(outcomes, len(refs)))
    finally:
        await runner.stop(5)
    assert peak == 3
    assert time.monotonic() - started >= 0.4  # three rounds of 0.15 s


async def _all_done(outcomes: list[JobOutcome], n: int) -> bool:
    return len([o for o in outcomes if o.state is JobState.COMPLETED]) >= n


async def test_stop_lets_running_jobs_finish(make_system: SystemFactory) -> None:
    # One slot, so the second job cannot be claimed while the first runs.
    system = await make_system(email={"concurrency": 1})
    registry = HandlerRegistry(system.job_types)
    started = asyncio.Event()

    async def handler(payload: Any, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(0.5)

    registry.register(OrderConfirmationEmail, handler)
    first = await system.helpers.queue_order_confirmation_email("o1", "u")
    runner = runner_for(system, registry)
    runner.start()
    await asyncio.wait_for(started.wait(), 10)
    second = await system.helpers.queue_order_confirmation_email("o2", "u")
    await runner.stop(5)
    assert await job_state(system, first.job_id) is JobState.COMPLETED
    assert await job_state(system, second.job_id) is JobState.WAITING


async def test_abandoned_job_is_recovered_by_another_worker(make_system: SystemFactory) -> None:
    system = await make_system()
    slow = HandlerRegistry(system.job_types)
    quick = HandlerRegistry(system.job_types)
    started = asyncio.Event()

    async def hang(payload: Any, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    async def finish(payload: Any, ctx: JobContext) -> str:
        return "recovered"

    slow.register(OrderConfirmationEmail, hang)
    quick.register(OrderConfirmationEmail, finish)
    ref = await system.helpers.queue_order_confirmation_email("o1", "u")
    first = runner_for(system, slow)
    first.start()
    await asyncio.wait_for(started.wait(), 10)
    await first.stop(0.1)  # grace too short: the job is abandoned, still locked
    assert await job_state(system, ref.job_id) is JobState.ACTIVE
    second = runner_for(system, quick)
    second.start()
    try:
        await wait_until(lambda: _is(system, ref.job_id, JobState.COMPLETED), timeout=15)
    finally:
        await second.stop(5)
    assert (await _record(system, ref.job_id)).result == "recovered"


async def test_enqueue_with_options_validation(make_system: SystemFactory) -> None:
    system = await make_system()
    payload = OrderConfirmationEmail(order_id="o1", user_id="u1")
    from ils.errors import InvalidPayloadError

    with pytest.raises(InvalidPayloadError):
        await system.producer.enqueue(
            "email", "order-confirmation", payload, JobOptions(priority=-1)
        )
    assert (await system.monitor.counts("email"))["waiting"] == 0


async def test_the_start_up_lines_say_how_jobs_are_stored(
    make_system: SystemFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """``ils worker`` and ``ils serve`` name the mode in the same words."""
    system = await make_system()
    expected = "Redis mode" if system.redis is not None else "local mode (jobs in the app database)"
    assert system.mode_sentence() == expected
    registry = HandlerRegistry(system.job_types)

    async def handler(payload: Any, ctx: JobContext) -> None:
        return None

    registry.register(OrderConfirmationEmail, handler)
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="ils.jobs.worker_process"):
        task = asyncio.create_task(run_workers(system, ["email"], registry, stop=stop))
        await wait_until(lambda: _logged(caplog, expected))
        stop.set()
        await task
    banners = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ILS ")]
    assert len(banners) == 1, banners  # one banner, one log record
    lines = banners[0].splitlines()
    assert lines[0] == f"ILS {ils.__version__} workers: {expected}"
    assert lines[1].startswith("  database: ")
    assert any(
        line.startswith("  email (") and "handlers: order-confirmation" in line for line in lines
    )


def test_the_banner_names_the_database_and_redis_without_their_passwords() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://ils:db-s3cret@db.example:5432/ils",
        redis_url="redis://:redis-s3cret@cache.example:6379/0",
    )

    class Described:
        def __init__(self) -> None:
            self.settings = settings

        def mode_sentence(self) -> str:
            return "Redis mode"

    lines = start_up_banner(Described(), "web", ["files: var/files"])  # type: ignore[arg-type]
    text = "\n".join(lines)
    assert "s3cret" not in text
    assert "  database: postgresql+asyncpg://ils:***@db.example:5432/ils" in lines
    assert "  redis: redis://:***@cache.example:6379/0" in lines
    assert lines[-1] == "  files: var/files"


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
