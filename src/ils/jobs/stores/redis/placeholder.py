"""Monitoring's view of any job hash, however broken: it never raises.

The lists, the search and the job page read jobs that a hostile or buggy producer may
have written. A job that decodes (``stores.redis.decode``) is shown as it is; one that
does not becomes a placeholder record: its failure reason (the one the worker stored,
else the decoding problem) and its raw fields under ``data`` (``undecodable``, ``raw``),
each cut to ``RAW_FIELD_CHARS`` with bytes that are not UTF-8 shown as ``\\xNN``, so an
admin sees what was sent and can remove it. Nothing here is logged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from ils.jobs.model import JobRecord, JobState
from ils.jobs.stores.redis.codec import COMPANY_OPTION
from ils.jobs.stores.redis.decode import MAX_TIME_MS, UndecodableJobError, decode_job

#: How much of each raw field a placeholder keeps.
RAW_FIELD_CHARS = 4_000
#: How many of a hash's fields a placeholder keeps (a hostile hash may have thousands).
RAW_FIELDS = 40
#: How much of a name, and of each log line, is shown.
NAME_CHARS = 200
LOG_LINE_CHARS = 4_000


def describe_record(
    queue: str,
    job_id: str,
    raw: Mapping[str, str],
    state: JobState,
    logs: list[str] | None = None,
) -> JobRecord:
    """The job's record, or its placeholder when it cannot be decoded."""
    shown_logs = [printable(line, LOG_LINE_CHARS) for line in logs or []]
    try:
        record, _ = decode_job(queue, job_id, raw, state, shown_logs)
    except UndecodableJobError as exc:
        return placeholder(queue, job_id, raw, state, str(exc), shown_logs)
    return record


def placeholder(
    queue: str,
    job_id: str,
    raw: Mapping[str, str],
    state: JobState,
    reason: str,
    logs: list[str],
) -> JobRecord:
    """A record that renders anywhere: the reason, the raw fields, sane numbers."""
    stored_reason = raw.get("failedReason")
    return JobRecord(
        id=job_id,
        queue=queue,
        name=printable(raw.get("name", ""), NAME_CHARS),
        data={"undecodable": reason, "raw": raw_fields(raw)},
        state=state,
        priority=0,
        attempts=1,
        attempts_made=lenient_int(raw.get("atm"), 2**31),
        backoff_delay_ms=0,
        delay_ms=0,
        progress=None,
        result=None,
        failed_reason=printable(stored_reason, RAW_FIELD_CHARS) if stored_reason else reason,
        stacktrace=[],
        created_at_ms=lenient_int(raw.get("timestamp"), MAX_TIME_MS),
        processed_at_ms=lenient_int(raw.get("processedOn"), MAX_TIME_MS) or None,
        finished_at_ms=lenient_int(raw.get("finishedOn"), MAX_TIME_MS) or None,
        logs=logs,
        store="redis",
        company_id=_company(raw.get("opts")),
    )


def raw_fields(raw: Mapping[str, str]) -> dict[str, str]:
    """The hash's fields (the first ``RAW_FIELDS`` by name), each bounded and escaped."""
    names = sorted(raw)[:RAW_FIELDS]
    return {printable(name, NAME_CHARS): printable(raw[name], RAW_FIELD_CHARS) for name in names}


def printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, safe for any JSON or HTML response: bytes
    that were not UTF-8 (surrogate-escaped by the client) shown as ``\\xNN``."""
    cut = text[:limit]
    try:
        encoded = cut.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        encoded = cut.encode("utf-8", "backslashreplace")
    shown = encoded.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        shown += f"… ({len(text) - limit} more characters)"
    return shown


def lenient_int(raw: str | None, high: int) -> int:
    """A numeric hash field, 0 when it is missing, not a number or outside 0..``high``."""
    try:
        value = float(raw or 0)
    except ValueError:
        return 0
    return int(value) if math.isfinite(value) and 0 <= value <= high else 0


def _company(raw_opts: str | None) -> str | None:
    """The company stamp, when ``opts`` is at least a plain JSON object carrying one."""
    if not raw_opts or len(raw_opts) > 100_000:
        return None
    try:
        opts = json.loads(raw_opts)
    except (ValueError, RecursionError):
        return None
    company = opts.get(COMPANY_OPTION) if isinstance(opts, dict) else None
    return printable(company, NAME_CHARS) if isinstance(company, str) and company else None
