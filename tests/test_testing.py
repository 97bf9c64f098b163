"""``ils.testing`` against the real job system: waits, run to idle, enqueue assertions."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from ils.clock import ManualClock
from ils.errors import ConfigurationError, JobFailedError, PermanentJobError, UnknownJobTypeError
from ils.jobs.model import JobOptions, JobState
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import JobContext
from ils.settings import Settings
from ils.testing import (
    RunResult,
    TestSystem,
    eventually,
    open_test_system,
    still,
    wait_until,
)

#: The email queue's default back-off base (docs/jobs.md: 5 s).
BACKOFF_MS = 5_000


# -- eventually / still / wait_until ----------------------------------------------------


async def test_eventually_returns_once_a_sync_or_async_check_holds() -> None:
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    await eventually(third_time, timeout=5)
    assert len(calls) == 3

    async def already() -> bool:
        return True

    await eventually(already, timeout=0)


async def test_eventually_times_out_with_its_message() -> None:
    with pytest.raises(AssertionError, match=r"^the light never turned green$"):
        await eventually(lambda: False, timeout=0.05, message="the light never turned green")
    with pytest.raises(AssertionError, match=r"^condition not met in 0\.05 s$"):
        await eventually(lambda: False, timeout=0.05)


async def test_eventually_builds_a_callable_message_when_it_fails() -> None:
    seen: list[int] = []

    def check() -> bool:
        seen.append(len(seen))
        return False

    with pytest.raises(AssertionError, match=r"^looked \d+ times$"):
        await eventually(check, timeout=0.05, message=lambda: f"looked {len(seen)} times")
    assert len(seen) > 1


async def test_still_passes_while_false_and_fails_as_soon_as_true() -> None:
    await still(lambda: False, for_s=0.05)
    flag = asyncio.Event()
    flag.set()
    with pytest.raises(AssertionError, match=r"^it happened$"):
        await still(flag.is_set, for_s=5, message="it happened")


def test_wait_until_waits_on_another_thread() -> None:
    done = threading.Event()
    worker = threading.Thread(target=done.set)
    worker.start()
    wait_until(done.is_set, timeout=5)
    worker.join()
    with pytest.raises(AssertionError, match="never"):
        wait_until(lambda: False, timeout=0.05, message="never")


# -- running handlers -------------------------------------------------------------------


async def test_a_completing_handler_runs_and_its_result_is_stored(tmp_path: Path) -> None:
    seen: list[OrderConfirmationEmail] = []

    async def send(payload: OrderConfirmationEmail, ctx: JobContext) -> dict[str, Any]:
        seen.append(payload)
        await ctx.log("sent")
        return {"orderId": payload.order_id, "attempt": ctx.attempt}

    async with open_test_system(tmp_path) as ts:
        ts.register(OrderConfirmationEmail, send)
        ref = await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        result = await ts.run_until_idle()
        assert [o.job_id for o in result.completed] == [ref.job_id]
        assert result.failed == result.retried == []
        assert seen == [OrderConfirmationEmail(order_id="ord-1", user_id="usr-1")]
        record = await ts.job("email", ref.job_id)
        assert record.state is JobState.COMPLETED
        assert record.result == {"orderId": "ord-1", "attempt": 1}
        assert record.logs == ["[attempt 1] sent"]
        assert await ts.enqueued("email") == []


async def test_a_permanent_failure_fails_the_job_at_once(tmp_path: Path) -> None:
    async def refuse(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        raise PermanentJobError(f"order {payload.order_id} does not exist")

    async with open_test_system(tmp_path) as ts:
        ts.register(OrderConfirmationEmail, refuse)
        ref = await ts.helpers.queue_order_confirmation_email("ord-404", "usr-1")
        result = await ts.run_until_idle()
        assert result.completed == result.retried == []
        [failed] = result.failed
        assert (failed.job_id, failed.attempt) == (ref.job_id, 1)
        assert failed.reason == "order ord-404 does not exist"
        assert (await ts.job("email", ref.job_id)).state is JobState.FAILED


async def test_a_retrying_handler_waits_for_its_back_off_on_a_manual_clock(
    tmp_path: Path,
) -> None:
    """A retry is delayed by the back-off: run_until_idle leaves it delayed until the
    clock moves, then runs it."""
    attempts: list[int] = []

    async def flaky(payload: OrderConfirmationEmail, ctx: JobContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise JobFailedError("SMTP server said 451, try later")
        return "sent"

    clock = ManualClock()
    async with open_test_system(tmp_path, clock=clock) as ts:
        ts.register(OrderConfirmationEmail, flaky)
        ref = await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        first = await ts.run_until_idle()
        assert [o.state for o in first.outcomes] == [JobState.DELAYED]
        assert first.retried[0].reason == "SMTP server said 451, try later"
        [delayed] = await ts.enqueued("email")
        assert (delayed.id, delayed.state) == (ref.job_id, JobState.DELAYED)

        clock.advance(BACKOFF_MS - 1)
        assert (await ts.run_until_idle()).outcomes == ()  # not due yet
        clock.advance(1)
        second = await ts.run_until_idle()
        assert [(o.state, o.attempt) for o in second.outcomes] == [(JobState.COMPLETED, 2)]
        assert attempts == [1, 2]
        assert (await ts.job("email", ref.job_id)).result == "sent"


async def test_advance_clock_runs_back_off_and_delays_to_the_end(tmp_path: Path) -> None:
    """With ``advance_clock`` one call runs every retry and delayed job, in no real
    time, until the job's attempts (here 2, from the settings) are used up."""

    async def broken(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        raise JobFailedError("still broken")

    clock = ManualClock()
    start = clock.now_ms()
    async with open_test_system(tmp_path, clock=clock, queues={"email": {"attempts": 2}}) as ts:
        ts.register(OrderConfirmationEmail, broken)
        payload = OrderConfirmationEmail(order_id="ord-1", user_id="usr-1")
        await ts.system.producer.enqueue(
            "email", "order-confirmation", payload, JobOptions(delay_ms=60_000)
        )
        assert (await ts.run_until_idle()).outcomes == ()  # delayed a minute: nothing due
        result = await ts.run_until_idle(advance_clock=True)
        assert [(o.state, o.attempt) for o in result.outcomes] == [
            (JobState.DELAYED, 1),
            (JobState.FAILED, 2),
        ]
        assert clock.now_ms() == start + 60_000 + BACKOFF_MS
        assert await ts.enqueued("email") == []


async def test_run_until_idle_runs_only_the_registered_queues(tmp_path: Path) -> None:
    """A handler's follow-up job on another queue stays queued for the test to check."""

    async def confirm(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        await ts.helpers.queue_system_notification(payload.user_id, "Order received", "Thanks")

    async with open_test_system(tmp_path) as ts:
        ts.register(OrderConfirmationEmail, confirm)
        await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        result = await ts.run_until_idle()
        assert len(result.completed) == 1
        record = await ts.assert_enqueued(
            "notification", "system-notification", user_id="usr-1", title="Order received"
        )
        assert record.state is JobState.WAITING


async def test_run_until_idle_times_out_saying_what_is_left(tmp_path: Path) -> None:
    never = asyncio.Event()

    async def hang(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        await never.wait()

    async with open_test_system(tmp_path) as ts:
        ts.register(OrderConfirmationEmail, hang)
        await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        await ts.helpers.queue_order_confirmation_email("ord-2", "usr-1")
        with pytest.raises(AssertionError) as failure:
            await ts.run_until_idle(timeout=0.3)
        message = str(failure.value)
        assert message.startswith("not idle after 0.3 s: ")
        assert "handler(s) running" in message
        assert "email: " in message
        assert "active" in message


async def test_run_until_idle_refuses_what_cannot_work(tmp_path: Path) -> None:
    async with open_test_system(tmp_path) as ts:
        with pytest.raises(ConfigurationError, match="register a handler"):
            await ts.run_until_idle()

        async def ok(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
            return None

        ts.register(OrderConfirmationEmail, ok)
        with pytest.raises(TypeError, match="ManualClock"):
            await ts.run_until_idle(advance_clock=True)
        with pytest.raises(ConfigurationError, match="has a handler already"):
            ts.register(OrderConfirmationEmail, ok)


# -- what is enqueued ----------------------------------------------------------------


async def test_enqueued_lists_queued_jobs_oldest_first(tmp_path: Path) -> None:
    async with open_test_system(tmp_path, clock=ManualClock()) as ts:
        first = await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        shipped = await ts.helpers.queue_shipment_notification_email("ord-1", "usr-1", "TRK-1")
        second = await ts.helpers.queue_order_confirmation_email("ord-2", "usr-1")
        assert [job.id for job in await ts.enqueued("email")] == [
            first.job_id,
            shipped.job_id,
            second.job_id,
        ]
        confirmations = await ts.enqueued("email", "order-confirmation")
        assert [job.id for job in confirmations] == [first.job_id, second.job_id]
        assert await ts.enqueued("pdf") == []


async def test_assert_enqueued_finds_a_job_by_its_fields(tmp_path: Path) -> None:
    async with open_test_system(tmp_path) as ts:
        await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        ref = await ts.helpers.queue_shipment_notification_email("ord-2", "usr-1", "TRK-9")
        record = await ts.assert_enqueued("email", "order-shipment", tracking_number="TRK-9")
        assert record.id == ref.job_id
        # JSON names work too, and no fields at all means "any job of that name".
        assert (await ts.assert_enqueued("email", "order-shipment", orderId="ord-2")) == record
        assert (await ts.assert_enqueued("email", "order-shipment")) == record


async def test_assert_enqueued_failure_lists_what_was_enqueued(tmp_path: Path) -> None:
    async with open_test_system(tmp_path) as ts:
        ref = await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        with pytest.raises(AssertionError) as failure:
            await ts.assert_enqueued("email", "order-confirmation", order_id="ord-9")
        message = str(failure.value)
        assert message.startswith(
            "no email/order-confirmation job with order_id='ord-9' is enqueued; "
            "enqueued on 'email':\n"
        )
        assert "order-confirmation {" in message
        assert "'orderId': 'ord-1'" in message
        assert f"(waiting, id {ref.job_id})" in message

        with pytest.raises(AssertionError, match="nothing is enqueued on 'pdf'"):
            await ts.assert_enqueued("pdf", "invoice", invoice_id="inv-1")
        with pytest.raises(AssertionError, match=r"^order_number: not a field of Order"):
            await ts.assert_enqueued("email", "order-confirmation", order_number="ord-1")
        with pytest.raises(UnknownJobTypeError):
            await ts.assert_enqueued("email", "order-confirmed")


# -- opening ---------------------------------------------------------------------------


async def test_a_test_system_is_local_whatever_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILS_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ILS_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    async with open_test_system(tmp_path) as ts:
        assert isinstance(ts, TestSystem)
        assert ts.system.mode == "local"
        assert ts.system.settings.data_dir == tmp_path
    with pytest.raises(ConfigurationError, match="local mode"):
        async with open_test_system(Settings(_env_file=None, data_dir=tmp_path)):
            pass  # the environment's Redis URL is in these settings


def test_run_result_sorts_outcomes_by_what_happened() -> None:
    assert RunResult(()).completed == RunResult(()).failed == RunResult(()).retried == []
