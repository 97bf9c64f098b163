"""Monitoring and operator actions of the Redis store, over one queue's BullMQ keys.

Our states are BullMQ's with two translations: "waiting" spans BullMQ's ``wait`` list,
its legacy ``paused`` list and its ``prioritized`` set, and those jobs count as
``paused`` while the queue's meta hash carries the paused flag (BullMQ 5+ pauses by
flag and leaves the jobs where they are). Every function here raises the store's own
errors; the caller wraps them in ``unavailable_guard``. A job that cannot be decoded is
listed and shown as a placeholder (``stores.redis.placeholder``), never an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from ils.errors import InvalidJobStateError, JobNotFoundError, JobSystemError
from ils.jobs.model import COUNTED_STATES, JobRecord, JobState, StoreHealth
from ils.jobs.stores.redis.bull import BullQueue
from ils.jobs.stores.redis.codec import decode_options, newest_first_key
from ils.jobs.stores.redis.placeholder import describe_record

#: BullMQ's containers of jobs that wait to run.
PENDING_TYPES = ("wait", "paused", "prioritized")
#: How many waiting ids oldest_waiting inspects per list/set (exact below this size).
OLDEST_SAMPLE = 1_000
HEALTH_TIMEOUT_S = 2.0
_DIRECT_STATES: Mapping[str, JobState] = {
    "active": JobState.ACTIVE,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "delayed": JobState.DELAYED,
}


async def counts(bull: BullQueue) -> dict[JobState, int]:
    """Counts by our states (see the module docstring for waiting and paused)."""
    raw = await bull.counts()
    paused = await bull.is_paused()
    pending = sum(raw[t] for t in PENDING_TYPES)
    result = dict.fromkeys(COUNTED_STATES, 0)
    result.update(
        {
            JobState.WAITING: 0 if paused else pending,
            JobState.PAUSED: pending if paused else 0,
            JobState.ACTIVE: raw["active"],
            JobState.COMPLETED: raw["completed"],
            JobState.FAILED: raw["failed"],
            JobState.DELAYED: raw["delayed"],
        }
    )
    return result


async def _ids_in_state(bull: BullQueue, state: JobState) -> list[str]:
    if state in (JobState.WAITING, JobState.PAUSED):
        if (state is JobState.PAUSED) != await bull.is_paused():
            return []
        return [job_id for t in PENDING_TYPES for job_id in await bull.ids(t)]
    return await bull.ids(state.value)


async def list_jobs(bull: BullQueue, state: JobState, offset: int, limit: int) -> list[JobRecord]:
    """A page newest first: finished jobs by finish time, straight from BullMQ's sets
    (scored by it), the others by creation time.

    BullMQ orders its sets by priority, due time or finish time, so this reads every id
    and creation time of the state (O(n), two pipelined round trips) before paging.
    """
    if state in (JobState.COMPLETED, JobState.FAILED):
        # The sets keep up to the retention count (100,000 in the dashboard bench):
        # a page reads its own slice only.
        page = await bull.newest_finished(bull.keys[state.value], offset, limit)
        return await _records(bull, page, state)
    ids = await _ids_in_state(bull, state)
    stamps = await bull.timestamps(ids)
    ranked = sorted(
        zip(ids, stamps, strict=True), key=lambda pair: newest_first_key(*pair), reverse=True
    )
    page = [job_id for job_id, _ in ranked[offset : offset + max(limit, 0)]]
    return await _records(bull, page, state)


async def _records(bull: BullQueue, page: list[str], state: JobState) -> list[JobRecord]:
    """The records of a page of ids in ``state``, one pipelined read for every page a
    list answers; a job deleted since its id was read is left out, not shown empty."""
    hashes = await bull.job_hashes(page)
    return [
        describe_record(bull.config.key, job_id, raw, state)
        for job_id, raw in zip(page, hashes, strict=True)
        if raw
    ]


async def state_of(bull: BullQueue, job_id: str) -> JobState | None:
    """Our state of a job, ``None`` when BullMQ finds it in no state."""
    bull_state = await bull.state(job_id)
    if bull_state in _DIRECT_STATES:
        return _DIRECT_STATES[bull_state]
    if bull_state in ("waiting", "prioritized", "waiting-children"):
        return JobState.PAUSED if await bull.is_paused() else JobState.WAITING
    return None


async def get_job(bull: BullQueue, job_id: str) -> JobRecord | None:
    """One job with its logs."""
    raw = await bull.job_hash(job_id)
    state = await state_of(bull, job_id) if raw else None
    if state is None:
        return None
    return describe_record(bull.config.key, job_id, raw, state, await bull.logs(job_id))


async def _existing(bull: BullQueue, job_id: str) -> dict[str, str]:
    raw = await bull.job_hash(job_id)
    if not raw:
        raise JobNotFoundError(bull.config.key, job_id)
    return raw


async def _wrong_state(bull: BullQueue, job_id: str, operation: str) -> JobSystemError:
    state = await state_of(bull, job_id)
    if state is None:
        return JobNotFoundError(bull.config.key, job_id)
    return InvalidJobStateError(bull.config.key, job_id, state.value, operation)


async def _reprocess(bull: BullQueue, job_id: str, raw: dict[str, str]) -> int:
    lifo = bool(decode_options(raw.get("opts")).get("lifo"))
    return await bull.reprocess_failed(job_id, lifo=lifo)


async def retry_job(bull: BullQueue, job_id: str) -> None:
    """A failed job back to waiting with its attempts reset (BullMQ's reprocessJob)."""
    raw = await _existing(bull, job_id)
    if await _reprocess(bull, job_id, raw) < 0:
        raise await _wrong_state(bull, job_id, "retry")


async def retry_failed(bull: BullQueue) -> int:
    """Retry each failed job as ``retry_job`` does, one script call per job.

    BullMQ's bulk ``retryJobs`` would be one call, but it keeps ``attemptsMade`` (a
    retried job then fails for good at its first error) and pushes prioritized jobs
    onto the plain wait list, ahead of every prioritized job.
    """
    retried = 0
    for job_id in await bull.ids("failed"):
        raw = await bull.job_hash(job_id)
        if raw and await _reprocess(bull, job_id, raw) > 0:
            retried += 1
    return retried


async def remove_job(bull: BullQueue, job_id: str) -> None:
    """Delete a job and its logs, unless a worker holds its lock."""
    await _existing(bull, job_id)
    if await bull.remove(job_id) != 1:
        # 0: locked by a worker (active); -8: owned by a job scheduler.
        raise await _wrong_state(bull, job_id, "remove")


async def clean(bull: BullQueue, state: JobState, older_than_ms: int, limit: int) -> int:
    """cleanJobsInSet per BullMQ container; ``limit`` spans the waiting containers.

    BullMQ ages waiting and delayed jobs by their last processing time when they have
    one (a retried job), else by creation; finished jobs by their finish time.
    """
    if state not in (JobState.WAITING, JobState.PAUSED):
        return len(await bull.clean(state.value, older_than_ms, limit))
    if (state is JobState.PAUSED) != await bull.is_paused():
        return 0
    removed = 0
    for bull_type in PENDING_TYPES:
        left = limit - removed if limit else 0
        if limit and left <= 0:
            break
        removed += len(await bull.clean(bull_type, older_than_ms, left))
    return removed


async def promote(bull: BullQueue, job_id: str) -> None:
    """A delayed job to waiting now."""
    await _existing(bull, job_id)
    if await bull.promote(job_id) < 0:
        raise await _wrong_state(bull, job_id, "promote")


async def oldest_waiting_ms(bull: BullQueue) -> int | None:
    """Exact up to ``OLDEST_SAMPLE`` waiting jobs per list/set, a sample beyond.

    FIFO jobs age at the tail of the wait list, but retried and promoted jobs re-enter
    at its head and prioritized jobs are ordered by priority, so a sample is needed.
    """
    stamps = await bull.timestamps(await bull.oldest_pending_ids(OLDEST_SAMPLE))
    known = [stamp for stamp in stamps if stamp > 0]
    return min(known) if known else None


async def list_company_jobs(
    bull: BullQueue, state: JobState, company_id: str, offset: int, limit: int
) -> tuple[list[JobRecord], int]:
    """One company's jobs in a scored state (completed, failed, delayed), newest first
    by that score, and how many there are: intersected in Redis, one page returned."""
    page, total = await bull.company_page(bull.keys[state.value], company_id, offset, limit)
    return await _records(bull, page, state), total


async def finished_per_minute(
    bull: BullQueue, since_ms: int, until_ms: int
) -> list[tuple[JobState, int, int]]:
    """``ZCOUNT`` per minute on BullMQ's completed and failed sets (scored by finish
    time), all in one round trip."""
    starts = list(range(since_ms, until_ms, 60_000))
    keys = [(JobState.COMPLETED, bull.keys["completed"]), (JobState.FAILED, bull.keys["failed"])]
    counts = await bull.count_in_ranges(
        [(key, start, min(start + 60_000, until_ms)) for _, key in keys for start in starts]
    )
    found: list[tuple[JobState, int, int]] = []
    for index, (state, _) in enumerate(keys):
        for offset, start in enumerate(starts):
            count = counts[index * len(starts) + offset]
            if count:
                found.append((state, start, count))
    return found


async def health(client: Redis, kind: str, prefix: str) -> StoreHealth:
    """PING round trip and INFO facts; an outage is a result, never an exception."""
    try:
        started = time.perf_counter()
        await asyncio.wait_for(client.ping(), HEALTH_TIMEOUT_S)
        latency_ms = (time.perf_counter() - started) * 1000
        info: dict[str, Any] = await asyncio.wait_for(client.info(), HEALTH_TIMEOUT_S)
        policy = await eviction_policy(client, info)
    except Exception as err:  # a health probe reports, it does not fail
        return StoreHealth(
            kind,
            False,
            None,
            {"prefix": prefix},
            error=f"redis unreachable: {type(err).__name__}: {err}",
        )
    details = {
        "redis_version": info.get("redis_version"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": info.get("maxmemory"),
        "maxmemory_policy": policy,
        "prefix": prefix,
    }
    return StoreHealth(kind, True, latency_ms, details)


async def eviction_policy(client: Redis, info: dict[str, Any]) -> str | None:
    """The eviction policy: from ``info`` (INFO's reply), else from CONFIG GET for
    servers whose INFO omits it; ``None`` when neither says."""
    policy = info.get("maxmemory_policy")
    if policy:
        return str(policy)
    try:
        reply = await client.config_get("maxmemory-policy")
    except Exception:  # CONFIG is often disabled on managed Redis
        return None
    value = reply.get("maxmemory-policy")
    return None if value is None else str(value)
