"""Failing the jobs no worker may run: stalled too often, or impossible to decode.

Both are failed for good by BullMQ's own ``moveToFinished`` under a lock the caller
holds (a fetch's token, or one taken by ``claim_deferred_failure``). A job that cannot
be decoded fails with its decoding problem as the reason, also when the stalled check
flagged it, since "stalled" would hide why no worker could finish it. Nothing of such
a job is trusted: no options, the queue's retention; its hash stays as written, for
the job page (``stores.redis.placeholder``).
"""

from __future__ import annotations

import json
import logging
import uuid

from ils.errors import StoreUnavailableError
from ils.jobs.model import JobState
from ils.jobs.stores.redis.bull import UNAVAILABLE_ERRORS, BullQueue
from ils.jobs.stores.redis.decode import MAX_COUNT, UndecodableJobError, decode_job
from ils.jobs.stores.redis.placeholder import NAME_CHARS, lenient_int, printable
from ils.jobs.stores.redis.replies import NextJob

#: Errors that mean Redis itself is out, not one job: never swallowed per job.
OUTAGES: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, StoreUnavailableError)


async def fail_deferred(
    bull: BullQueue, job_id: str, raw: dict[str, str], token: str, *, fetch_next: bool
) -> NextJob:
    """Fail a job the stalled check flagged (``defa``), with the flag's reason unless
    the job cannot be decoded."""
    try:
        _, opts = decode_job(bull.config.key, job_id, raw, JobState.ACTIVE)
        previous = json.loads(raw.get("stacktrace") or "[]")
    except UndecodableJobError as exc:
        return await fail_undecodable(bull, job_id, raw, token, str(exc), fetch_next=fetch_next)
    reason = printable(raw["defa"], NAME_CHARS)
    outcome = await bull.finish(
        job_id,
        raw.get("name", ""),
        opts,
        int(raw.get("atm") or 0),
        token,
        completed=False,
        value=reason,
        fetch_next=fetch_next,
        stacktrace=previous,
    )
    return outcome if isinstance(outcome, NextJob) else NextJob(None, None, 0, 0)


async def fail_undecodable(
    bull: BullQueue,
    job_id: str,
    raw: dict[str, str],
    token: str,
    reason: str,
    *,
    fetch_next: bool,
) -> NextJob:
    """Fail a claimed job that cannot be decoded, for good, with ``reason``; the log
    line names the job and the problem, never a value."""
    outcome = await bull.finish(
        job_id,
        "",
        {},
        lenient_int(raw.get("atm"), MAX_COUNT),
        token,
        completed=False,
        value=reason,
        fetch_next=fetch_next,
    )
    recorded = "" if isinstance(outcome, NextJob) else f" (not recorded: code {outcome})"
    logging.getLogger(__name__).warning(
        "job %s %s failed for good: %s%s",
        printable(job_id, NAME_CHARS),
        bull.config.key,
        reason,
        recorded,
    )
    return outcome if isinstance(outcome, NextJob) else NextJob(None, None, 0, 0)


async def fail_if_flagged(bull: BullQueue, job_id: str) -> None:
    """Fail now a job the stalled check just flagged as stalled too often."""
    token = f"ils-stalled-{uuid.uuid4().hex}"
    if await bull.claim_deferred_failure(job_id, token):
        raw = await bull.job_hash(job_id)
        await fail_deferred(bull, job_id, raw, token, fetch_next=False)


class StalledLog:
    """Logs a stalled job that could not be failed once, not at every pass of the
    stalled check (the job stays flagged and the next pass tries again)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._logged: set[tuple[str, str]] = set()

    def once(self, queue: str, job_id: str, exc: BaseException) -> None:
        """Log ``exc`` (its type only: a message may quote the job) for this job."""
        key = (queue, job_id)
        if key in self._logged:
            return
        if len(self._logged) >= self._capacity:
            self._logged.clear()
        self._logged.add(key)
        logging.getLogger(__name__).warning(
            "job %s %s: the stalled-job check could not fail it (%s); the check goes on",
            printable(job_id, NAME_CHARS),
            queue,
            type(exc).__name__,
        )
