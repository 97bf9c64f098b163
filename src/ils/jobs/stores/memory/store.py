"""The in-memory job store: the local store's behaviour with no I/O, for tests.

It keeps the same state machine as ``stores.local`` (priorities, delays, attempts
with back-off, lock leases on the injected clock, stalled recovery, the fixed
rate-limit window, pause, retention, logs, progress and the admin operations) and
the contract suite holds it to the other stores, so code tested on it behaves the
same on a real store. Several stores given one ``MemoryState`` share their jobs, as
processes of a deployment share a database; the data lives as long as that state.

Every operation yields to the event loop once, as a round trip to a real store
does, so concurrent tasks interleave as they would in production, then does all its
work without awaiting: that is what makes it atomic on one event loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ils.clock import Clock
from ils.errors import InvalidJobStateError, JobNotFoundError, LockLostError
from ils.jobs.catalogue import Catalogue, QueueConfig
from ils.jobs.model import (
    COUNTED_STATES,
    FINISHED_STATES,
    ClaimedJob,
    Fetch,
    JobRecord,
    JobState,
    NewJob,
    StoreHealth,
)
from ils.jobs.stores.base import JobTiming, PolledStore, clean_bounds
from ils.jobs.stores.local.claim import rate_limit_wait
from ils.jobs.stores.local.sql import (
    ACTIVE,
    COMPLETED,
    DELAYED,
    FAILED,
    STALLED_REASON,
    WAITING,
    check_new_job,
    json_value,
    new_job_values,
    retried_values,
    shown_state,
    stored_state,
)
from ils.jobs.stores.memory.state import (
    KIND,
    MemoryJob,
    MemoryState,
    QueueData,
    frozen,
    newest_first,
)


class MemoryJobStore(PolledStore):
    """A job store in this process's memory.

    Args:
        catalogue: the queues; queue arguments are its keys.
        clock: time source of every timestamp, lock, delay and window; a
            ``ManualClock`` makes leases, back-off and windows testable without waiting.
        max_stalled_count: how many times a job may lose its worker and go back to
            waiting before it fails.
        poll_interval_ms: how often ``wait_for_work`` reads the clock again, so a
            delayed job comes due when a hand-moved clock passes its time (jobs added
            through any store sharing the state wake waiters at once).
        state: the jobs; pass one ``MemoryState`` to several stores to share them.
    """

    kind = KIND
    #: Company lists and searches are exact over the whole queue, as the local
    #: store's SQL answers them.
    scans_whole_queue = True

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        clock: Clock | None = None,
        max_stalled_count: int = 1,
        poll_interval_ms: int = 50,
        state: MemoryState | None = None,
    ) -> None:
        self.state = state or MemoryState()
        super().__init__(
            catalogue,
            clock=clock,
            max_stalled_count=max_stalled_count,
            poll_interval_ms=poll_interval_ms,
            wakeups=self.state,
        )

    async def _open(self, queue: str) -> tuple[QueueConfig, QueueData]:
        """The queue's config (unknown queues raise at once) and data, after the one
        yield every operation makes (see the module docstring)."""
        config = self._config(queue)
        await asyncio.sleep(0)
        return config, self.state.queue(queue)

    # -- producers -------------------------------------------------------------------

    async def add(self, queue: str, job: NewJob) -> str:
        return (await self.add_bulk(queue, [job]))[0]

    async def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        config = self._config(queue)
        for job in jobs:
            check_new_job(queue, job)  # every job checked before any is added
        if not jobs:
            return []
        _, data = await self._open(queue)
        now = self._now()
        ids: list[str] = []
        for job in jobs:
            values = new_job_values(config, job, now)
            values.update(data=frozen(job.data), progress=frozen(None), result=frozen(None))
            ids.append(values["id"])
            if values["id"] not in data.jobs:  # an existing id adds nothing
                data.jobs[values["id"]] = MemoryJob(seq=self.state.next_seq(), **values)
        self.state.notify(queue)
        return ids

    # -- monitoring ------------------------------------------------------------------

    async def counts(self, queue: str) -> dict[JobState, int]:
        _, data = await self._open(queue)
        counts = dict.fromkeys(COUNTED_STATES, 0)
        for job in data.jobs.values():
            counts[shown_state(job.state, data.paused)] += 1
        return counts

    async def list_jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        wanted = JobState(state)
        _, data = await self._open(queue)
        stored = stored_state(wanted, data.paused)
        if stored is None or limit <= 0:
            return []
        start = max(offset, 0)
        page = newest_first(data.in_state(stored), wanted)[start : start + limit]
        return [job.record(data.paused) for job in page]

    async def get_job(self, queue: str, job_id: str) -> JobRecord | None:
        _, data = await self._open(queue)
        found = data.jobs.get(job_id)
        return None if found is None else found.record(data.paused, with_logs=True)

    async def oldest_waiting_ms(self, queue: str) -> int | None:
        """Creation time of the job that became due first (as the local store reads
        its due-time index); the oldest by creation for jobs added without delay."""
        _, data = await self._open(queue)
        waiting = data.in_state(WAITING)
        oldest = min(waiting, key=lambda j: (j.run_at_ms, j.seq), default=None)
        return None if oldest is None else oldest.created_at_ms

    async def finished_per_minute(
        self, queue: str, since_ms: int, until_ms: int
    ) -> list[tuple[JobState, int, int]]:
        _, data = await self._open(queue)
        found: list[tuple[JobState, int, int]] = []
        for state in (COMPLETED, FAILED):
            minutes = Counter(
                (job.finished_at_ms - since_ms) // 60_000
                for job in data.in_state(state)
                if job.finished_at_ms is not None and since_ms <= job.finished_at_ms < until_ms
            )
            found += [
                (JobState(state), since_ms + n * 60_000, c) for n, c in sorted(minutes.items())
            ]
        return found

    async def finished_timings(
        self, queue: str, since_ms: int, until_ms: int, *, bucket_ms: int, per_bucket: int
    ) -> list[JobTiming]:
        """Every n-th job of each bucket in finish order, as the Redis store picks them;
        the due time is ``run_at_ms``, as in the local store."""
        _, data = await self._open(queue)
        buckets: dict[int, list[MemoryJob]] = {}
        for job in data.in_state(COMPLETED) + data.in_state(FAILED):
            done = job.finished_at_ms
            if done is not None and since_ms <= done < until_ms:
                buckets.setdefault((done - since_ms) // bucket_ms, []).append(job)
        found: list[JobTiming] = []
        for jobs in buckets.values():
            jobs.sort(key=lambda j: (j.finished_at_ms or 0, j.seq))
            kept = [j for j in jobs[:: -(-len(jobs) // max(per_bucket, 1))] if j.processed_at_ms]
            for job in kept:
                started, finished = job.processed_at_ms or 0, job.finished_at_ms or 0
                wait = max(started - job.run_at_ms, 0) if job.attempts_made <= 1 else None
                found.append(
                    JobTiming(finished, wait, max(finished - started, 0), len(jobs) / len(kept))
                )
        return found

    async def health(self) -> StoreHealth:
        """Always reachable, no round trip to measure; the details say what it holds."""
        await asyncio.sleep(0)
        return StoreHealth(self.kind, True, 0.0, {"jobs": self.state.job_count()})

    # -- operations ------------------------------------------------------------------

    async def retry_job(self, queue: str, job_id: str) -> None:
        _, data = await self._open(queue)
        _back_to_waiting(_expect(queue, data, job_id, FAILED, "retry"), self._now())
        self.state.notify(queue)

    async def retry_failed(self, queue: str) -> int:
        _, data = await self._open(queue)
        now = self._now()
        failed = data.in_state(FAILED)
        for job in failed:
            _back_to_waiting(job, now)
        if failed:
            self.state.notify(queue)
        return len(failed)

    async def remove_job(self, queue: str, job_id: str) -> None:
        _, data = await self._open(queue)
        found = data.jobs.get(job_id)
        if found is None:
            raise JobNotFoundError(queue, job_id)
        if found.state == ACTIVE:
            raise InvalidJobStateError(queue, job_id, ACTIVE, "remove")
        del data.jobs[job_id]  # its log lines go with it

    async def clean(
        self, queue: str, state: JobState, *, older_than_ms: int = 0, limit: int = 0
    ) -> int:
        self._config(queue)
        state, cutoff = clean_bounds(state, older_than_ms, self._now())
        _, data = await self._open(queue)
        stored = stored_state(state, data.paused)
        if stored is None:
            return 0
        finished = state in FINISHED_STATES

        def age(job: MemoryJob) -> int:
            return (job.finished_at_ms or 0) if finished else job.created_at_ms

        doomed = sorted(
            (job for job in data.in_state(stored) if age(job) <= cutoff),
            key=lambda j: (age(j), j.seq),
        )
        if limit > 0:
            doomed = doomed[:limit]
        for job in doomed:
            del data.jobs[job.id]
        return len(doomed)

    async def pause(self, queue: str) -> None:
        _, data = await self._open(queue)
        data.switches = replace(data.switches, paused=True)

    async def resume(self, queue: str) -> None:
        _, data = await self._open(queue)
        data.switches = replace(data.switches, paused=False)
        self.state.notify(queue)

    async def is_paused(self, queue: str) -> bool:
        _, data = await self._open(queue)
        return data.paused

    async def promote(self, queue: str, job_id: str) -> None:
        _, data = await self._open(queue)
        found = _expect(queue, data, job_id, DELAYED, "promote")
        found.state, found.run_at_ms, found.delay_ms = WAITING, self._now(), 0
        self.state.notify(queue)

    # -- workers ---------------------------------------------------------------------

    async def fetch(self, queue: str, token: str) -> Fetch:
        config, data = await self._open(queue)
        return self._claim(config, data, token)

    def _claim(self, config: QueueConfig, data: QueueData, token: str) -> Fetch:
        """Claim the most urgent due job, checks in BullMQ's order (``local.claim.claim``):
        promote due delayed jobs, then the rate limit, then the pause flag."""
        now = self._now()
        data.promote_due(now)
        limited_ms = rate_limit_wait(config, data.switches, now)
        if limited_ms > 0:
            return Fetch(None, wait_ms=limited_ms, rate_limited=True)
        picked = None if data.paused else data.most_urgent()
        if picked is None:
            return data.nothing(now)
        picked.state = ACTIVE
        picked.lock_token = token
        picked.lock_until_ms = now + config.lock_duration_ms
        picked.attempts_started += 1
        picked.processed_at_ms = now
        if config.rate_limit is not None:
            data.count_start(config.rate_limit, now)
        return Fetch(ClaimedJob(picked.record(paused=False), token))

    async def complete(
        self, queue: str, job: ClaimedJob, result: Any, *, fetch_next: bool = False
    ) -> Fetch | None:
        self._config(queue)
        json_value(result, queue, job.record.name, "result")
        config, data = await self._open(queue)
        now = self._now()
        held = _held(queue, data, job, now)
        held.state, held.result, held.finished_at_ms = COMPLETED, frozen(result), now
        held.attempts_made += 1
        held.release()
        data.prune(COMPLETED, config.keep_completed, now)
        return self._claim(config, data, job.token) if fetch_next else None

    async def _fail(
        self, queue: str, job: ClaimedJob, reason: str, stacktrace: str | None, retry: bool
    ) -> JobState:
        """As ``local._record_failure``: the attempts and back-off are the stored job's
        (fixed when it was added), not the worker's copy of its record."""
        config, data = await self._open(queue)
        now = self._now()
        held = _held(queue, data, job, now)
        held.attempts_made += 1
        held.failed_reason = reason
        if stacktrace is not None:
            held.stacktrace.append(stacktrace)
        held.release()
        if retry and held.attempts_made < held.attempts:
            backoff = config.backoff_ms(held.attempts_made, held.backoff_delay_ms)
            held.state = DELAYED if backoff > 0 else WAITING
            held.run_at_ms, held.delay_ms = now + backoff, backoff
            self.state.notify(queue)
        else:
            held.state, held.finished_at_ms = FAILED, now
            data.prune(FAILED, config.keep_failed, now)
        return shown_state(held.state, data.paused)

    async def extend_locks(self, queue: str, jobs: Sequence[ClaimedJob]) -> list[str]:
        config, data = await self._open(queue)
        now = self._now()
        lost: list[str] = []
        for job in jobs:
            held = data.holding(job, now)
            if held is None:
                lost.append(job.id)
            else:
                held.lock_until_ms = now + config.lock_duration_ms
        return lost

    async def recover_stalled(self, queue: str) -> list[str]:
        """As ``local._recover``: a requeued job keeps its due time, so it goes back to
        the front of its priority; one out of stall allowance fails as an attempt."""
        config, data = await self._open(queue)
        now = self._now()
        stalled = [
            job
            for job in data.in_state(ACTIVE)
            if job.lock_until_ms is not None and job.lock_until_ms < now
        ]
        requeued = failed = False
        for job in stalled:
            if job.stalled_count < self._max_stalled:
                job.state = WAITING
                requeued = True
            else:
                job.state, job.failed_reason, job.finished_at_ms = FAILED, STALLED_REASON, now
                job.attempts_made += 1
                failed = True
            job.stalled_count += 1
            job.release()
        if failed:
            data.prune(FAILED, config.keep_failed, now)
        if requeued:
            self.state.notify(queue)
        return [job.id for job in stalled]

    async def update_progress(self, queue: str, job: ClaimedJob, progress: Any) -> None:
        self._config(queue)
        json_value(progress, queue, job.record.name, "progress")
        _, data = await self._open(queue)
        _find(queue, data, job.id).progress = frozen(progress)

    async def add_log(self, queue: str, job: ClaimedJob, line: str) -> None:
        _, data = await self._open(queue)
        _find(queue, data, job.id).logs.append(str(line))

    async def _ready_in_s(self, queue: str) -> float | None:
        """As the local store's; the clock is read again every ``poll_interval_ms``, so
        a hand-moved clock passing a delayed job's time ends the wait. On close the
        jobs stay in the state, for stores still sharing it."""
        _, data = await self._open(queue)
        return data.ready_in_s(self._now())


def _held(queue: str, data: QueueData, job: ClaimedJob, now: int) -> MemoryJob:
    """The job ``job``'s worker still holds the lock of; ``LockLostError`` if it does not
    (the worker must not complete or fail a job another one may have taken)."""
    held = data.holding(job, now)
    if held is None:
        raise LockLostError(queue, job.id)
    return held


def _find(queue: str, data: QueueData, job_id: str) -> MemoryJob:
    found = data.jobs.get(job_id)
    if found is None:
        raise JobNotFoundError(queue, job_id)
    return found


def _expect(queue: str, data: QueueData, job_id: str, expected: str, operation: str) -> MemoryJob:
    found = _find(queue, data, job_id)
    if found.state != expected:
        shown = shown_state(found.state, data.paused)
        raise InvalidJobStateError(queue, job_id, shown.value, operation)
    return found


def _back_to_waiting(job: MemoryJob, now: int) -> None:
    """A failed job back to waiting, as the local store's retry: the columns of
    ``local.sql.retried_values`` set on the job."""
    for column, value in retried_values(now).items():
        setattr(job, column, value)
