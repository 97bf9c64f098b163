"""The fetch loop of one (store, queue): concurrency, limits, locks, shutdown.

We own the loop instead of using ``bullmq.Worker.run`` because that loop ignores rate
limits after the first window (see docs/design.md). Per (store, queue) a
:class:`QueueConsumer` keeps up to ``concurrency`` jobs running: a feeder claims jobs
into free slots, a slot that finishes a job claims the next one in the same round trip,
a renewer extends the locks of running jobs, and a sweeper moves jobs of dead workers
back to waiting. ``stop`` stops claiming and lets running jobs finish within a grace
period. ``runner.Runner`` puts one consumer per (store, queue) of a process together.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ils.errors import (
    ILSError,
    InvalidPayloadError,
    LockLostError,
    PermanentJobError,
    StoreUnavailableError,
)
from ils.jobs.attempt import (
    HandlerContext,
    JobListener,
    JobOutcome,
    RunningJob,
    failure_reason,
    job_fields,
    to_json,
)
from ils.jobs.cancelling import cancel_until_done
from ils.jobs.catalogue import QueueConfig
from ils.jobs.gate import RedisGate
from ils.jobs.model import ClaimedJob, Fetch, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.stores.base import JobStore

STORE_RETRY_S = 1.0
GATE_WAIT_S = 0.2
IDLE_BLOCK_MS = 5_000
#: How long ``stop`` waits for a cancelled task to end before leaving it behind.
CANCEL_WAIT_S = 1.0


class RateTokens(Protocol):
    """The one rate-limit window of a queue over both stores (the local store's)."""

    async def take_rate_token(self, queue: str) -> tuple[int, int]: ...

    async def refund_rate_token(self, queue: str, window_start_ms: int) -> None: ...


@dataclass
class QueueConsumer:
    """Runs one queue of one store in this process."""

    store: JobStore
    config: QueueConfig
    registry: HandlerRegistry
    worker_id: str
    listeners: Sequence[JobListener] = ()
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    # For the Redis store: while the gate is open (Redis down) the consumer waits for
    # the probe instead of hammering a dead server and the log.
    gate: RedisGate | None = None
    # The queue's slots in this process, shared by its consumers of both stores: one
    # process never runs more than the queue's concurrency, whichever store jobs are in.
    slots: asyncio.Semaphore | None = None
    # Redis mode, rate-limited queue: the window every start counts in, whichever store
    # it is from (the local store's), so both stores together stay within the limit.
    rate_tokens: RateTokens | None = None
    # Whether ``slots`` is shared with another store's consumer (Redis mode).
    shares_slots: bool = False
    _running: dict[str, tuple[ClaimedJob, asyncio.Task[None]]] = field(default_factory=dict)
    _slots: asyncio.Semaphore = field(init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _token_seq: int = 0
    _in_fetch: bool = False
    _in_wait_for_job: bool = False

    def __post_init__(self) -> None:
        self._slots = self.slots or asyncio.Semaphore(self.config.concurrency)

    @property
    def queue(self) -> str:
        return self.config.key

    @property
    def active(self) -> int:
        """How many jobs this consumer is running now."""
        return len(self._running)

    def running(self) -> list[RunningJob]:
        """The jobs this consumer runs now (a snapshot; read-only)."""
        return [
            RunningJob(
                queue=self.queue,
                job_id=claimed.id,
                name=claimed.record.name,
                store=self.store.kind,
                started_at_ms=claimed.record.processed_at_ms,
                company_id=claimed.record.company_id,
            )
            for claimed, _ in self._running.values()
        ]

    def start(self) -> None:
        """Start the feeder, the lock renewer and the stalled-job sweeper."""
        self._tasks = [
            asyncio.create_task(self._feed(), name=f"feed:{self.store.kind}:{self.queue}"),
            asyncio.create_task(self._renew_locks(), name=f"renew:{self.queue}"),
            asyncio.create_task(self._sweep_stalled(), name=f"sweep:{self.queue}"),
        ]

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; wait up to ``grace_s`` for running jobs, then abandon them.

        An abandoned job keeps its lock until it expires; another worker's sweeper then
        moves it back to waiting, so it is never lost. ``stop`` itself always returns
        soon after the grace: a claim that never comes back (a store that stopped
        answering mid-command) or a job that swallows its cancellation is left behind
        with a warning, not waited for, so a worker told to stop does stop.
        """
        self._stopping.set()
        deadline = asyncio.get_running_loop().time() + grace_s
        feeder = self._tasks[0] if self._tasks else None
        if feeder is not None:
            # A claim in flight is let through (its job runs within the grace). An idle
            # feeder is woken where its wait claims (a cancel could lose a claim that
            # ran), and cancelled where it only waits.
            if not self._in_fetch and not (self._in_wait_for_job and await self._end_wait()):
                feeder.cancel()
            await self._end_by(deadline, [feeder])
        jobs = [task for _, task in self._running.values()]
        if abandoned := await self._end_by(deadline, jobs):
            self.logger.warning(
                "queue %s: %d job(s) still running after %.1fs grace; their locks will "
                "expire and another worker will pick them up",
                self.queue,
                abandoned,
                grace_s,
            )
        if stuck := await cancel_until_done(self._tasks[1:], deadline):
            self.logger.warning(
                "queue %s: %d task(s) ignored cancellation until the grace ended; left behind",
                self.queue,
                stuck,
            )

    async def _end_by(self, deadline: float, tasks: Sequence[asyncio.Task[None]]) -> int:
        """Let ``tasks`` run until ``deadline``, cancel those still running, and give
        them :data:`CANCEL_WAIT_S` to end; how many had to be cancelled."""
        if not tasks:
            return 0
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(tasks, timeout=left)
        for task in pending:
            task.cancel()
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
            if stuck:
                self.logger.warning(
                    "queue %s: %d task(s) ignored cancellation for %.1fs; left behind",
                    self.queue,
                    len(stuck),
                    CANCEL_WAIT_S,
                )
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: each task logs its own failures
        return len(pending)

    def _token(self) -> str:
        self._token_seq += 1
        return f"{self.worker_id}:{self._token_seq}"

    async def _feed(self) -> None:
        while not self._stopping.is_set():
            if self.gate is not None and not self.gate.up:
                await asyncio.sleep(GATE_WAIT_S)
                continue
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            self._in_fetch = True
            try:
                fetched = await self._fetch()
            except StoreUnavailableError as exc:
                self._slots.release()
                if self.gate is not None:
                    # A refused connection opens the gate; anything else is confirmed
                    # by probes first (a busy process is not an outage).
                    self.gate.report(exc)
                    await asyncio.sleep(GATE_WAIT_S)
                else:
                    self.logger.warning("queue %s: %s", self.queue, exc)
                    await asyncio.sleep(STORE_RETRY_S)
                continue
            except ILSError as exc:
                self._slots.release()
                self.logger.warning(
                    "queue %s: %s store unavailable: %s", self.queue, self.store.kind, exc
                )
                await asyncio.sleep(STORE_RETRY_S)
                continue
            except Exception:
                self._slots.release()
                self.logger.exception(
                    "queue %s: fetching from the %s store failed", self.queue, self.store.kind
                )
                await asyncio.sleep(STORE_RETRY_S)
                continue
            finally:
                self._in_fetch = False
            if fetched.job is not None:
                await self._launch_first(fetched.job)
                continue
            if self._stopping.is_set():
                self._slots.release()
                return  # stop() let this fetch finish: no idle block (up to 5 s) after it
            try:
                if self._claims_on_wake(fetched):
                    await self._wait_for_job(fetched)
                else:
                    self._slots.release()
                    await self._idle(fetched)
            except Exception as exc:
                await self._waiting_failed(exc)

    def _claims_on_wake(self, fetched: Fetch) -> bool:
        """Whether to wait with :meth:`JobStore.wait_for_job`, keeping the slot for the
        job its wake-up may claim. Not with shared rate tokens (one is taken before
        each claim), nor after a rate-limited fetch, nor when the one slot of a queue
        is shared with the other store's consumer (it would wait out the idle block)."""
        return (
            self.store.claims_on_wake
            and self.rate_tokens is None
            and not fetched.rate_limited
            and not (self.shares_slots and self.config.concurrency == 1)
        )

    async def _wait_for_job(self, fetched: Fetch) -> None:
        """Wait for work holding a slot, and run the job claimed in the same round trip
        (``stop`` wakes this wait rather than cancel it: see ``stores.redis.wait``)."""
        self._in_wait_for_job = True
        try:
            claimed = await self.store.wait_for_job(
                self.queue, _idle_timeout_ms(fetched), self._token(), self.worker_id
            )
        except BaseException:
            self._slots.release()
            raise
        finally:
            self._in_wait_for_job = False
        if claimed is None:
            self._slots.release()
        else:
            await self._launch_first(claimed)

    async def _end_wait(self) -> bool:
        """Wake the feeder's :meth:`_wait_for_job`; ``False`` when the store cannot (or
        could not reach its server in time), so the caller cancels it instead."""
        try:
            async with asyncio.timeout(CANCEL_WAIT_S):
                return await self.store.end_wait(self.queue, self.worker_id)
        except Exception:
            return False

    async def _fetch(self) -> Fetch:
        """Claim a job; with shared rate tokens, count the start in the one window
        first and give the token back when nothing was claimed."""
        if self.rate_tokens is None:
            return await self.store.fetch(self.queue, self._token())
        wait_ms, window = await self.rate_tokens.take_rate_token(self.queue)
        if wait_ms > 0:
            return Fetch(None, wait_ms=wait_ms, rate_limited=True)
        try:
            fetched = await self.store.fetch(self.queue, self._token())
        except BaseException:
            await self.rate_tokens.refund_rate_token(self.queue, window)
            raise
        if fetched.job is None:
            await self.rate_tokens.refund_rate_token(self.queue, window)
            return fetched
        return replace(fetched, job=replace(fetched.job, rate_window_ms=window))

    async def _idle(self, fetched: Fetch) -> None:
        if fetched.rate_limited:
            await asyncio.sleep(max(fetched.wait_ms, 1) / 1000)
            return
        await self.store.wait_for_work(self.queue, _idle_timeout_ms(fetched))

    async def _waiting_failed(self, exc: Exception) -> None:
        self.logger.warning(
            "queue %s: waiting for work failed: %s", self.queue, failure_reason(exc)
        )
        await asyncio.sleep(STORE_RETRY_S)

    async def _launch_first(self, claimed: ClaimedJob) -> None:
        """Start the job's task and let it run before the feeder claims the next: the
        claim's own CPU (building the command, sending it) would otherwise delay the
        handler's start by a pass of the event loop (0.14 ms p50 of a 0.46 ms pickup,
        from the reply's arrival to the handler, measured in a worker process)."""
        task = asyncio.create_task(self._slot(claimed), name=f"job:{self.queue}:{claimed.id}")
        self._running[claimed.id] = (claimed, task)
        await asyncio.sleep(0)

    async def _slot(self, claimed: ClaimedJob) -> None:
        """Run a job; keep the slot for the next one while the store hands one over."""
        task = asyncio.current_task()
        assert task is not None
        current: ClaimedJob | None = claimed
        try:
            while current is not None:
                self._running[current.id] = (current, task)
                try:
                    following = await self._process(current)
                finally:
                    self._running.pop(current.id, None)
                current = following
        finally:
            self._slots.release()

    async def _process(self, claimed: ClaimedJob) -> ClaimedJob | None:
        record = claimed.record
        started = asyncio.get_running_loop().time()
        started_ms = record.processed_at_ms or 0
        registration = self.registry.lookup(self.queue, record.name)
        next_fetch: Fetch | None = None
        try:
            if registration is None:
                raise PermanentJobError(
                    f"no handler for job {record.name!r} on queue {self.queue!r} in this worker"
                )
            payload = registration.parse(record.data)
            result = await registration.handler(
                payload, HandlerContext(self.store, claimed, self.queue)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError | InvalidPayloadError)
            reason = failure_reason(exc)
            trace = traceback.format_exc()
            state = await self._record_failure(claimed, reason, trace, retry=not permanent)
            self.logger.log(
                logging.WARNING if state is JobState.FAILED else logging.INFO,
                "job %s %s/%s attempt %d failed (%s): %s",
                claimed.id,
                self.queue,
                record.name,
                record.attempts_made + 1,
                state,
                reason,
                extra=job_fields(claimed, self.queue),
            )
            await self._notify(claimed, state, started, started_ms, reason)
            return None
        try:
            # The next job comes with the completion, unless its start must first be
            # counted in the shared rate window.
            fetch_next = not self._stopping.is_set() and self.rate_tokens is None
            next_fetch = await self.store.complete(
                self.queue, claimed, to_json(result), fetch_next=fetch_next
            )
        except ILSError as exc:
            self._not_recorded(claimed, "completion", exc)
            return None
        await self._notify(claimed, JobState.COMPLETED, started, started_ms, None)
        if next_fetch is not None and next_fetch.job is not None and not self._stopping.is_set():
            return next_fetch.job
        return None

    async def _record_failure(
        self, claimed: ClaimedJob, reason: str, trace: str, *, retry: bool
    ) -> JobState:
        try:
            return await self.store.fail(self.queue, claimed, reason, trace, retry=retry)
        except ILSError as exc:
            self._not_recorded(claimed, "failure", exc)
        return JobState.ACTIVE

    def _not_recorded(self, claimed: ClaimedJob, outcome: str, exc: ILSError) -> None:
        """Log a job's ``outcome`` (completion, failure) that the store did not take:
        the lock was lost (another worker may hold the job now) or the store failed."""
        extra = job_fields(claimed, self.queue)
        if isinstance(exc, LockLostError):
            message = "job %s %s: lock lost before %s was recorded"
            self.logger.warning(message, claimed.id, self.queue, outcome, extra=extra)
            return
        message = "job %s %s: could not record %s: %s"
        self.logger.warning(message, claimed.id, self.queue, outcome, exc, extra=extra)

    async def _notify(
        self,
        claimed: ClaimedJob,
        state: JobState,
        started: float,
        started_ms: int,
        reason: str | None,
    ) -> None:
        if not self.listeners:
            return
        outcome = JobOutcome(
            queue=self.queue,
            name=claimed.record.name,
            job_id=claimed.id,
            store=self.store.kind,
            state=state,
            attempt=claimed.record.attempts_made + 1,
            created_at_ms=claimed.record.created_at_ms,
            started_at_ms=started_ms,
            duration_s=asyncio.get_running_loop().time() - started,
            reason=reason,
        )
        for listener in self.listeners:
            try:
                maybe = listener(outcome)
                if maybe is not None:
                    await maybe
            except Exception:
                self.logger.exception("job listener failed")

    async def _renew_locks(self) -> None:
        interval = self.config.lock_duration_ms / 2000
        while True:
            await asyncio.sleep(interval)
            running = [claimed for claimed, _ in self._running.values()]
            if not running or (self.gate is not None and not self.gate.up):
                continue
            try:
                lost = await self.store.extend_locks(self.queue, running)
            except Exception as exc:
                self.logger.warning(
                    "queue %s: lock renewal failed: %s", self.queue, failure_reason(exc)
                )
                continue
            for job_id in lost:
                # A job that completed while its renewal was in flight is not lost.
                still = self._running.get(job_id)
                if still is not None and any(still[0] is claimed for claimed in running):
                    self.logger.warning(
                        "job %s %s: lock lost while running",
                        job_id,
                        self.queue,
                        extra=job_fields(still[0], self.queue),
                    )

    async def _sweep_stalled(self) -> None:
        interval = self.config.stalled_interval_ms / 1000
        while True:
            if self.gate is not None and not self.gate.up:
                await asyncio.sleep(interval)
                continue
            try:
                recovered = await self.store.recover_stalled(self.queue)
            except Exception as exc:
                self.logger.warning(
                    "queue %s: stalled-job check failed: %s", self.queue, failure_reason(exc)
                )
                recovered = []
            for job_id in recovered:
                self.logger.warning(
                    "job %s %s: its worker stopped; moved back or failed",
                    job_id,
                    self.queue,
                    extra={"job_id": job_id, "queue": self.queue},
                )
            await asyncio.sleep(interval)


def _idle_timeout_ms(fetched: Fetch) -> int:
    """How long to wait after a fetch that claimed nothing: until a delayed job it
    reported comes due, at most the idle block."""
    return min(fetched.wait_ms, IDLE_BLOCK_MS) if fetched.wait_ms > 0 else IDLE_BLOCK_MS
