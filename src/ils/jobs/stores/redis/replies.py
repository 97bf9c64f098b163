"""What BullMQ's fetching scripts hand back, read into :class:`NextJob`.

``moveToActive`` and ``moveToFinished`` (with fetch-next) answer the same way; their
replies are read here whichever connection they came on (the pipe's or a pool's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bullmq.scripts import raw2NextJobData


@dataclass(frozen=True, slots=True)
class NextJob:
    """What moveToActive (or a finish script with fetch-next) handed back."""

    job_id: str | None
    data: dict[str, str] | None
    limit_until_ms: int
    delay_until_ms: int


def parse_next(parsed: Sequence[Any]) -> NextJob:
    """Read ``[jobData, jobId, limitUntil, delayUntil]`` as ``raw2NextJobData`` returns it.

    ``limitUntil`` is the limiter key's PTTL (ms left); ``delayUntil`` is the epoch ms
    at which the next delayed job is due; both are 0 when they do not apply.
    """
    data, job_id, limit_until, delay_until = parsed
    return NextJob(
        job_id=str(job_id) if data else None,
        data={str(k): str(v) for k, v in data.items()} if data else None,
        limit_until_ms=int(limit_until or 0),
        delay_until_ms=int(delay_until or 0),
    )


def next_job(reply: Any) -> NextJob:
    """The job (or the wait) a ``moveToActive`` reply hands over."""
    return parse_next(raw2NextJobData(reply))


def finish_outcome(reply: Any) -> int | NextJob:
    """A ``moveToFinished`` reply: its negative status code, or what it fetched next."""
    if isinstance(reply, int) and reply < 0:
        return reply
    return next_job(reply)
