"""Pure translations between our job model and BullMQ's Redis representation.

Nothing here performs I/O, so every rule that decides compatibility with the Node
BullMQ service (option names, encodings, defaults, back-off) is testable on its own.
The shapes follow BullMQ 5/6 as the ``bullmq`` 3.4.4 Lua scripts store them: a job is a
hash whose ``data``, ``opts``, ``returnvalue``, ``progress`` and ``stacktrace`` fields
are JSON strings, and whose ``opts`` may use BullMQ's short keys (``kl``, ``de``...).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ils.errors import InvalidPayloadError
from ils.jobs.catalogue import QueueConfig, Retention
from ils.jobs.model import NewJob

#: BullMQ's short option keys, as ``bullmq.job.optsDecodeMap`` reads them back.
SHORT_OPTION_KEYS: Mapping[str, str] = {
    "fpof": "failParentOnFailure",
    "cpof": "continueParentOnFailure",
    "idof": "ignoreDependencyOnFailure",
    "rdof": "removeDependencyOnFailure",
    "kl": "keepLogs",
    "de": "deduplication",
}


def now_ms() -> int:
    """Wall-clock epoch milliseconds, the unit of every BullMQ timestamp."""
    return time.time_ns() // 1_000_000


def keep_jobs(retention: Retention) -> dict[str, int]:
    """BullMQ's ``removeOnComplete`` / ``removeOnFail`` object for a retention."""
    return {"age": retention.age_s, "count": retention.count}


def finished_retention(opts: Mapping[str, Any], config: QueueConfig, *, completed: bool) -> Any:
    """What BullMQ keeps when a job finishes: the job's own ``removeOnComplete`` or
    ``removeOnFail`` (any producer may set one, Node's included), else the queue's
    retention. One rule for every finish, whoever calls it."""
    if completed:
        return opts.get("removeOnComplete", keep_jobs(config.keep_completed))
    return opts.get("removeOnFail", keep_jobs(config.keep_failed))


def validate_new_job(queue: str, job: NewJob) -> None:
    """Refuse a job no store would run (``NewJob.problems``, which include what Node
    BullMQ refuses), before anything is queued; Redis has no limits of its own here."""
    problems = job.problems()
    if problems:
        raise InvalidPayloadError(queue, job.name if isinstance(job.name, str) else "?", problems)


def bull_options(config: QueueConfig, job: NewJob) -> dict[str, Any]:
    """The BullMQ job options for ``job``, with the queue's defaults filled in.

    Retention is written into every job (as the Node producers do) so that any
    worker, ours or Node's, applies the catalogue's retention when it finishes it.
    """
    options = job.options
    backoff = options.backoff_delay_ms
    if backoff is None:
        backoff = config.backoff_delay_ms
    opts: dict[str, Any] = {
        "attempts": config.attempts if options.attempts is None else options.attempts,
        "backoff": {"type": "exponential", "delay": backoff},
        "removeOnComplete": keep_jobs(config.keep_completed),
        "removeOnFail": keep_jobs(config.keep_failed),
    }
    if options.priority:
        opts["priority"] = options.priority
    if options.delay_ms > 0:
        opts["delay"] = options.delay_ms
    if options.job_id is not None:
        opts["jobId"] = options.job_id
    if options.company_id is not None:
        # Stored with the job's options (BullMQ keeps keys it does not know), so the
        # payload stays exactly the TypeScript service's.
        opts[COMPANY_OPTION] = options.company_id
    return opts


#: The job option that carries the company a job was made for.
COMPANY_OPTION = "ilsCompanyId"


def decode_options(raw: str | None) -> dict[str, Any]:
    """A job's stored ``opts`` JSON with BullMQ's short keys spelled out; ``{}`` when
    they cannot be read (the worker decodes strictly, ``stores.redis.decode``: this
    loose reading serves operations on a job already claimed or finished)."""
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {SHORT_OPTION_KEYS.get(key, key): value for key, value in loaded.items()}


def attempts_of(opts: Mapping[str, Any]) -> int:
    """Total attempts allowed; BullMQ treats a missing or zero ``attempts`` as one."""
    return max(_int(opts.get("attempts"), 1), 1)


def backoff_base_ms(opts: Mapping[str, Any]) -> int:
    """The back-off delay option (a number means BullMQ's ``fixed`` strategy)."""
    backoff = opts.get("backoff")
    if isinstance(backoff, dict):
        return _int(backoff.get("delay"), 0)
    return _int(backoff, 0)


def retry_delay_ms(opts: Mapping[str, Any], attempts_made: int, config: QueueConfig) -> int:
    """The delay before retry number ``attempts_made`` (1-based), as BullMQ computes it.

    The job's own ``backoff`` wins (Node producers may set ``fixed`` or a number); a
    job without one is retried at once, as BullMQ does. An unknown (custom) strategy
    cannot be run here, so it falls back to exponential with the job's delay.
    """
    backoff = opts.get("backoff")
    if backoff is None:
        return 0
    base = backoff_base_ms(opts)
    if isinstance(backoff, dict) and backoff.get("type") != "fixed":
        return config.backoff_ms(attempts_made, base)
    return base


def next_stacktrace(
    previous: list[str], stacktrace: str | None, opts: Mapping[str, Any]
) -> list[str]:
    """Stack traces after one more failed attempt, honouring ``stackTraceLimit``."""
    traces = [*previous, stacktrace] if stacktrace else list(previous)
    limit = opts.get("stackTraceLimit")
    if limit == 0:
        return []
    if isinstance(limit, int) and limit > 0:
        return traces[-limit:]
    return traces


def failure_fields(reason: str, stacktrace: list[str]) -> dict[str, str]:
    """The hash fields a failed attempt rewrites (BullMQ's ``fieldsToUpdate``)."""
    return {
        "failedReason": reason,
        "stacktrace": json.dumps(stacktrace, separators=(",", ":"), allow_nan=False),
    }


def newest_first_key(job_id: str, timestamp: int) -> tuple[int, int, str]:
    """Sort key for "newest first": creation time, then the Redis counter id.

    Jobs added in the same millisecond (a bulk add) keep their add order because
    generated ids grow; custom ids sort after them, by name.
    """
    return (timestamp, int(job_id) if job_id.isascii() and job_id.isdigit() else -1, job_id)


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return default
