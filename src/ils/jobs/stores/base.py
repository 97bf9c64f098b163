"""The one job-store interface every part of ILS talks to.

Three implementations exist: ``stores.redis.RedisJobStore`` (BullMQ's Lua scripts on
Redis, compatible with the platform's Node BullMQ service),
``stores.local.LocalJobStore`` (tables in the app database, SQLite or PostgreSQL) and
``stores.memory.MemoryJobStore`` (the local store's behaviour in memory, for tests).
The runner, the producer and the monitoring API only see this class, and one contract
test suite (``tests/jobs/test_store_contract.py``) holds all of them (on Redis,
SQLite, PostgreSQL and memory) to the same behaviour. The local and the memory store
share :class:`PolledStore` (their catalogue, clock and waits), and every store the
checks of ``clean`` (:func:`cleanable_state`) and the filter of lists and searches
(:class:`JobFilter`).

Queues are named by their catalogue key (``"email"``), never by the Redis name.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ils.clock import Clock, SystemClock
from ils.jobs.catalogue import Catalogue, QueueConfig
from ils.jobs.model import (
    CLEANABLE_STATES,
    ClaimedJob,
    Fetch,
    JobRecord,
    JobState,
    NewJob,
    StoreHealth,
)
from ils.jobs.stores.waiting import Wakeups, wait_until_ready

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

#: Jobs read per round of a scan (``JobStore._filtered``).
SCAN_PAGE = 500


class JobTiming(NamedTuple):
    """How long one finished job waited and ran (:meth:`JobStore.finished_timings`).

    ``weight`` is how many finished jobs of its bucket this one stands for: 1 when the
    store gave every job of the bucket, more when it gave a sample.
    """

    finished_ms: int
    wait_ms: int | None
    run_ms: int
    weight: float = 1.0


def cleanable_state(state: JobState) -> JobState:
    """The state :meth:`JobStore.clean` is asked to delete from, refused alike by every
    store (``ValueError``) when it is not one of ``CLEANABLE_STATES``."""
    state = JobState(state)
    if state not in CLEANABLE_STATES:
        raise ValueError(f"cannot clean {state.value} jobs")
    return state


def clean_bounds(state: JobState, older_than_ms: int, now_ms: int) -> tuple[JobState, int]:
    """What :meth:`JobStore.clean` checks before it deletes, in the stores that measure
    age themselves: the state (:func:`cleanable_state`) and the newest age it deletes."""
    return cleanable_state(state), now_ms - max(older_than_ms, 0)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """A company list or a search, as :meth:`JobStore._filtered` answers both: the jobs
    in ``state`` of ``company_id`` (any company when ``None``) whose name, id or payload
    contains ``text`` in any case (any job when ``None``); the page ``offset`` and
    ``limit`` of them, and at most ``scan_limit`` jobs looked at by a scan."""

    state: JobState
    company_id: str | None
    text: str | None
    offset: int
    limit: int
    scan_limit: int

    def matches(self, job: JobRecord) -> bool:
        if self.company_id is not None and job.company_id != self.company_id:
            return False
        if self.text is None:
            return True
        needle = self.text.casefold()
        return (
            needle in job.name.casefold()
            or needle in job.id.casefold()
            or needle in json.dumps(job.data, ensure_ascii=False).casefold()
        )


class JobStore(abc.ABC):
    """Durable storage and state machine of jobs, for producers, workers and admins."""

    #: ``"redis"`` or ``"local"``: shown in records, health and the monitoring API.
    kind: str
    #: Whether the default company lists and searches (:meth:`_filtered`) read the whole
    #: queue rather than stop at ``scan_limit``: true where reading is cheap (memory).
    scans_whole_queue: bool = False

    # -- producers -----------------------------------------------------------------

    @abc.abstractmethod
    async def add(self, queue: str, job: NewJob) -> str:
        """Add one job and return its id.

        A job with ``delay_ms > 0`` starts ``delayed``; otherwise ``waiting`` (or
        ``paused`` when the queue is paused). Attempts, back-off and retention default
        to the queue's catalogue values. An existing ``job_id`` adds nothing.
        """

    @abc.abstractmethod
    async def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        """Add several jobs atomically (all or none); ids in the order given."""

    # -- monitoring and operations ---------------------------------------------------

    @abc.abstractmethod
    async def counts(self, queue: str) -> dict[JobState, int]:
        """The number of jobs in every state of ``COUNTED_STATES`` (zeros included).

        Waiting jobs of a paused queue count as ``paused``, not ``waiting``.
        """

    @abc.abstractmethod
    async def list_jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        """A page of the jobs in ``state``, newest first: completed and failed jobs by
        finish time (what an operator looks for, and what both stores index), the
        others by creation time."""

    async def list_company_jobs(
        self,
        queue: str,
        state: JobState,
        company_id: str,
        *,
        offset: int = 0,
        limit: int = 50,
        scan_limit: int = 10_000,
    ) -> tuple[list[JobRecord], int, bool]:
        """A page of one company's jobs in ``state`` (the order of :meth:`list_jobs`),
        how many there are, and whether the count stopped at ``scan_limit``.

        This default pages through :meth:`list_jobs` and keeps the company's, looking
        at ``scan_limit`` jobs at most (the Redis store: BullMQ has no index by
        company). The local store answers from its index instead.
        """
        keep = JobFilter(state, company_id, None, offset, limit, scan_limit)
        return await self._filtered(queue, keep)

    async def search_jobs(
        self,
        queue: str,
        state: JobState,
        text: str,
        *,
        company_id: str | None = None,
        offset: int = 0,
        limit: int = 50,
        scan_limit: int = 10_000,
    ) -> tuple[list[JobRecord], int, bool]:
        """Jobs in ``state`` whose name, id or payload contains ``text`` (any case),
        optionally of one company: a page, how many match, and whether the search
        stopped at ``scan_limit`` jobs. This default scans :meth:`list_jobs` pages
        (the Redis store); the local store searches in SQL."""
        keep = JobFilter(state, company_id, text, offset, limit, scan_limit)
        return await self._filtered(queue, keep)

    async def _filtered(self, queue: str, keep: JobFilter) -> tuple[list[JobRecord], int, bool]:
        """The one place company lists and searches are answered (a store with an
        index overrides it). This default pages through :meth:`list_jobs`, keeping
        what ``keep`` accepts, looking at ``keep.scan_limit`` jobs at most: the page,
        how many were kept, and whether the scan stopped before the end."""
        found: list[JobRecord] = []
        looked = 0
        budget = math.inf if self.scans_whole_queue else keep.scan_limit
        start = max(keep.offset, 0)  # as the local store's SQL reads a negative offset
        end = start + keep.limit
        while looked < budget:
            page = await self.list_jobs(queue, keep.state, offset=looked, limit=SCAN_PAGE)
            found += [job for job in page if keep.matches(job)]
            looked += SCAN_PAGE
            if len(page) < SCAN_PAGE:
                return found[start:end], len(found), False
        return found[start:end], len(found), True

    @abc.abstractmethod
    async def get_job(self, queue: str, job_id: str) -> JobRecord | None:
        """One job in full, logs included; ``None`` when the store does not hold it."""

    @abc.abstractmethod
    async def retry_job(self, queue: str, job_id: str) -> None:
        """Send a failed job back to ``waiting`` with its attempts reset.

        Raises ``JobNotFoundError`` or ``InvalidJobStateError`` (job not failed).
        """

    @abc.abstractmethod
    async def retry_failed(self, queue: str) -> int:
        """Send every failed job back to ``waiting``; returns how many."""

    @abc.abstractmethod
    async def remove_job(self, queue: str, job_id: str) -> None:
        """Delete a job and its logs.

        Raises ``JobNotFoundError``, or ``InvalidJobStateError`` for an active job
        (its worker holds the lock).
        """

    @abc.abstractmethod
    async def clean(
        self, queue: str, state: JobState, *, older_than_ms: int = 0, limit: int = 0
    ) -> int:
        """Delete jobs in ``state`` (one of ``CLEANABLE_STATES``) older than the grace.

        Age is measured from the finish time for finished jobs and the creation time
        otherwise. ``limit`` 0 means no limit. Returns how many were deleted.
        """

    @abc.abstractmethod
    async def pause(self, queue: str) -> None:
        """Stop handing out jobs of ``queue`` (active ones finish)."""

    @abc.abstractmethod
    async def resume(self, queue: str) -> None:
        """Hand out jobs of ``queue`` again."""

    @abc.abstractmethod
    async def is_paused(self, queue: str) -> bool:
        """Whether ``queue`` is paused."""

    @abc.abstractmethod
    async def promote(self, queue: str, job_id: str) -> None:
        """Make a delayed job waiting now.

        Raises ``JobNotFoundError`` or ``InvalidJobStateError`` (job not delayed).
        """

    @abc.abstractmethod
    async def oldest_waiting_ms(self, queue: str) -> int | None:
        """Creation time (epoch ms) of the oldest waiting job, ``None`` when none wait."""

    @abc.abstractmethod
    async def finished_per_minute(
        self, queue: str, since_ms: int, until_ms: int
    ) -> list[tuple[JobState, int, int]]:
        """``(completed | failed, minute start in epoch ms, count)`` of the kept jobs
        that finished in ``[since_ms, until_ms)``, minutes counted from ``since_ms``
        (a whole minute). For the dashboard's charts: counted in the store, so a
        queue holding 100,000 finished jobs answers as fast as one holding ten; jobs
        already removed by retention are not counted."""

    @abc.abstractmethod
    async def finished_timings(
        self, queue: str, since_ms: int, until_ms: int, *, bucket_ms: int, per_bucket: int
    ) -> list[JobTiming]:
        """Wait and run times of the kept jobs that finished (completed or failed) in
        ``[since_ms, until_ms)``, at most ``per_bucket`` per bucket of ``bucket_ms``
        counted from ``since_ms``: the latency charts' data, read in bounds whatever
        the queue holds (a queue keeping 100,000 finished jobs answers in one bounded
        read, not 100,000 job reads).

        A bucket with more jobs than ``per_bucket`` gives at most that many, spread
        over the whole bucket (each store's module says how), each weighted by the
        bucket's jobs over those given: the weights of a bucket add up to its jobs, and
        percentiles over several stores weigh each store by its jobs.

        Run time is the finish minus the start of the attempt that finished. Wait time
        is that start minus when the job became due: when it was added, plus the delay
        it was added with. Retries: a job that took more than one attempt counts its
        last attempt's run time and no wait time (``None``): BullMQ keeps the last
        start but not when that attempt became due, and the time from the first due
        time to that start is back-off and earlier attempts, not time in the queue. A
        job that stalled and ran again counts from its due time to its last start. A
        job retried or promoted by hand waits from that moment in the local stores,
        from its creation (plus delay) in Redis, which does not record either. Jobs
        never started (none in practice) are left out; clock skew between hosts never
        makes a time negative.
        """

    @abc.abstractmethod
    async def health(self) -> StoreHealth:
        """Reachability, round-trip latency and store facts (memory, eviction policy)."""

    # -- workers -------------------------------------------------------------------

    @abc.abstractmethod
    async def fetch(self, queue: str, token: str) -> Fetch:
        """Claim the next job for the worker identified by ``token``.

        Takes the most urgent due job (priority 0 first, then 1, 2, ...; FIFO within a
        priority), locks it for the queue's lock duration, marks it ``active``,
        increments its started attempts and counts it against the queue's global rate
        limit. Due delayed jobs become waiting first. Returns no job when the queue is
        paused, empty or rate limited (see ``Fetch``).
        """

    @abc.abstractmethod
    async def complete(
        self, queue: str, job: ClaimedJob, result: Any, *, fetch_next: bool = False
    ) -> Fetch | None:
        """Mark a claimed job completed with its JSON-able ``result``.

        Applies the completed retention (age and count). With ``fetch_next``, claims
        the next job in the same round trip (token reused) and returns it, else
        ``None``. Raises ``LockLostError`` when the token no longer holds the lock.
        """

    async def fail(
        self,
        queue: str,
        job: ClaimedJob,
        reason: str,
        stacktrace: str | None,
        *,
        retry: bool = True,
    ) -> JobState:
        """Record a failed attempt of a claimed job and return its new state.

        When ``retry`` and attempts remain, the job becomes ``delayed`` for the
        exponential back-off (``backoff * 2**(attempts_made-1)``; ``waiting`` when that
        is 0); otherwise ``failed`` with the failed retention applied. ``reason`` and
        ``stacktrace`` are stored as text (stack traces accumulate, one per attempt).
        Raises ``LockLostError`` when the token no longer holds the lock.
        """
        trace = None if stacktrace is None else str(stacktrace)
        return await self._fail(queue, job, str(reason), trace, retry)

    @abc.abstractmethod
    async def _fail(
        self, queue: str, job: ClaimedJob, reason: str, stacktrace: str | None, retry: bool
    ) -> JobState:
        """What :meth:`fail` does in this store, given ``reason`` and ``stacktrace`` as
        ``str``: the public signature and that coercion are written once, in :meth:`fail`."""

    @abc.abstractmethod
    async def extend_locks(self, queue: str, jobs: Sequence[ClaimedJob]) -> list[str]:
        """Extend the locks of running jobs by the lock duration; returns ids whose lock
        was already lost."""

    @abc.abstractmethod
    async def recover_stalled(self, queue: str) -> list[str]:
        """Move active jobs whose lock expired (their worker died) back to waiting.

        A job that stalled more than ``max_stalled_count`` times fails instead, with the
        reason "job stalled more than allowable limit". Returns the ids handled.
        """

    @abc.abstractmethod
    async def update_progress(self, queue: str, job: ClaimedJob, progress: Any) -> None:
        """Store a running job's progress (a number 0-100 or a small JSON object)."""

    @abc.abstractmethod
    async def add_log(self, queue: str, job: ClaimedJob, line: str) -> None:
        """Append a log line to a running job."""

    async def add_log_in(
        self, session: AsyncSession, queue: str, job: ClaimedJob, line: str
    ) -> None:
        """Append a log line in the handler's open transaction ``session`` where this
        store can: the line then costs no transaction of its own and exists exactly
        when the handler's work commits. A store whose jobs are not in the session's
        database writes the line at once, as :meth:`add_log` does."""
        await self.add_log(queue, job, line)

    @abc.abstractmethod
    async def wait_for_work(self, queue: str, timeout_ms: int) -> None:
        """Return when a job of ``queue`` may be ready, or after ``timeout_ms``."""

    #: Whether :meth:`wait_for_job` may claim a job (the caller keeps a slot for it).
    claims_on_wake = False

    async def wait_for_job(
        self, queue: str, timeout_ms: int, token: str, waker: str
    ) -> ClaimedJob | None:
        """Wait as :meth:`wait_for_work`; a store that can claim a job for ``token`` in
        the same round trip as the wake-up returns it, others return ``None`` and the
        caller fetches. ``waker`` names the caller to :meth:`end_wait`."""
        await self.wait_for_work(queue, timeout_ms)
        return None

    async def end_wait(self, queue: str, waker: str) -> bool:
        """End ``waker``'s :meth:`wait_for_job` early; ``False`` when this store cannot,
        and the caller cancels it instead (safe where the wait claims nothing)."""
        return False

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""


class PolledStore(JobStore):
    """What the local and the in-memory store share: a catalogue and a clock, a stall
    limit, and a ``wait_for_work`` that wakes on :class:`Wakeups` and polls between.

    The memory store copies the local store's behaviour, so the parts that do not
    touch where jobs are kept are written once here rather than twice.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        clock: Clock | None,
        max_stalled_count: int,
        poll_interval_ms: int,
        wakeups: Wakeups,
    ) -> None:
        self._catalogue = catalogue
        self._clock = clock or SystemClock()
        self._max_stalled = max_stalled_count
        self._poll_s = max(poll_interval_ms, 1) / 1000
        self._wakeups = wakeups
        self._closed = False

    def _config(self, queue: str) -> QueueConfig:
        return self._catalogue[queue]

    def _now(self) -> int:
        return self._clock.now_ms()

    @abc.abstractmethod
    async def _ready_in_s(self, queue: str) -> float | None:
        """Seconds until a job of ``queue`` comes due: 0 when one is claimable now,
        ``None`` when none is pending."""

    async def wait_for_work(self, queue: str, timeout_ms: int) -> None:
        """Return when a job may be claimable, or after ``timeout_ms``.

        Jobs added, retried, promoted or resumed through this store (or, in memory,
        any store sharing its state) wake the waiters at once; others are seen by
        polling every ``poll_interval_ms``; a delayed job coming due ends the wait at
        its due time.
        """
        self._config(queue)
        await wait_until_ready(
            lambda: self._wakeups.wakeup(queue),
            lambda: self._ready_in_s(queue),
            lambda: self._closed,
            self._poll_s,
            timeout_ms,
        )

    async def close(self) -> None:
        """Wake every waiter; the store is unusable afterwards."""
        self._closed = True
        self._wakeups.notify_all()
