"""Strict decoding of a BullMQ job hash: a valid record, or the one problem that stops it.

Any producer on the shared Redis can write a job hash: a Node ``queue.add`` with data
nested 1,500 levels deep, ``opts`` that are not JSON or hold ``1e999``, a ``priority``
of ``inf``, bytes that are not UTF-8. Read loosely, such a job raised wherever it was
read (the worker claimed it and left it active, the stalled check tripped on it every
pass). Here it raises one :class:`UndecodableJobError` whose message names the problem
(``undecodable job: data nested too deep``), so the worker can fail the job for good
with that reason, and monitoring can show a placeholder (``stores.redis.placeholder``).

The limits are those of the rest of the system: JSON nested deeper than ``MAX_DEPTH``
levels would exhaust Python's recursion limit further on (pydantic, the API's
encoder); a number that is not a finite double is one Node could not have written;
times must fit a ``datetime``. Text that is not UTF-8 arrives surrogate-escaped
(``bull.make_client``) and is refused here, never passed on to a JSON response.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ils.errors import JobSystemError
from ils.jobs.model import JobRecord, JobState
from ils.jobs.stores.redis.codec import (
    COMPANY_OPTION,
    SHORT_OPTION_KEYS,
    attempts_of,
    backoff_base_ms,
)

#: The deepest nesting of arrays and objects a job's JSON may have. Payloads are flat
#: identifiers; 64 levels leave room for any real producer and stay far from recursion.
MAX_DEPTH = 64
#: The last epoch millisecond a ``datetime`` can hold (9999-12-31T23:59:59.999Z).
MAX_TIME_MS = 253_402_300_799_999
#: Counters and priorities: the integers a JavaScript number holds exactly.
MAX_COUNT = 2**53
#: Longer integer literals cannot be finite doubles (the largest has 309 digits).
MAX_INT_DIGITS = 309
_TIME_FIELDS = ("timestamp", "processedOn", "finishedOn")
_BRACKETS = re.compile(r"[\[\]{}]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_PARENT_FAILURE_OPTIONS = (
    "removeDependencyOnFailure",
    "failParentOnFailure",
    "continueParentOnFailure",
    "ignoreDependencyOnFailure",
)


class UndecodableJobError(JobSystemError):
    """A job hash no worker can run: ``problem`` names what is wrong, never a value."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"undecodable job: {problem}")
        self.problem = problem


class _OutOfRange(Exception):
    """A JSON number that is not a finite double (raised inside ``json.loads``)."""


def decode_job(
    queue: str,
    job_id: str,
    raw: Mapping[str, str],
    state: JobState,
    logs: list[str] | None = None,
) -> tuple[JobRecord, dict[str, Any]]:
    """The record of a job hash and its options (short keys spelled out).

    Raises:
        UndecodableJobError: naming the first field that cannot be decoded.
    """
    name = _text("name", raw.get("name"))
    opts = decode_strict_options(raw.get("opts"))
    data = _json("data", raw.get("data"), {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UndecodableJobError("data is not a JSON object")
    stacktrace = _json("stacktrace", raw.get("stacktrace"), [])
    if not isinstance(stacktrace, list):
        raise UndecodableJobError("stacktrace is not a JSON list")
    times = {field: _number(field, raw.get(field), 0, 0, MAX_TIME_MS) for field in _TIME_FIELDS}
    record = JobRecord(
        id=job_id,
        queue=queue,
        name=name,
        data=data,
        state=state,
        priority=_number("priority", raw.get("priority"), 0, -MAX_COUNT, MAX_COUNT),
        attempts=attempts_of(opts),
        attempts_made=_number(
            "attemptsMade", raw.get("atm") or raw.get("attemptsMade"), 0, 0, MAX_COUNT
        ),
        backoff_delay_ms=backoff_base_ms(opts),
        delay_ms=_number("delay", raw.get("delay"), 0, 0, MAX_TIME_MS),
        progress=_json("progress", raw.get("progress"), 0),
        result=_json("returnvalue", raw.get("returnvalue"), None),
        failed_reason=_text("failedReason", raw.get("failedReason")) or None,
        stacktrace=[str(line) for line in stacktrace],
        created_at_ms=times["timestamp"],
        processed_at_ms=times["processedOn"] or None,
        finished_at_ms=times["finishedOn"] or None,
        logs=list(logs or []),
        store="redis",
        company_id=str(opts[COMPANY_OPTION]) if opts.get(COMPANY_OPTION) else None,
    )
    return record, opts


def decode_strict_options(raw: str | None) -> dict[str, Any]:
    """A job's ``opts``: a JSON object whose options have the types BullMQ gives them.

    Raises:
        UndecodableJobError: ``opts`` is not JSON, not an object, or an option the
            worker reads (attempts, back-off, retention, parent) has the wrong type.
    """
    loaded = _json("opts", raw, {})
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UndecodableJobError("opts is not a JSON object")
    opts = {SHORT_OPTION_KEYS.get(key, key): value for key, value in loaded.items()}
    for key in ("attempts", "stackTraceLimit", "keepLogs", "delay", "priority"):
        if not _optional_number(opts.get(key)):
            raise UndecodableJobError(f"opts.{key} is not a number")
    backoff = opts.get("backoff")
    if isinstance(backoff, dict):
        backoff = backoff.get("delay")
    if not _optional_number(backoff):
        raise UndecodableJobError("opts.backoff is not a number or a back-off object")
    for key in ("removeOnComplete", "removeOnFail"):
        keep = opts.get(key)
        values = keep.values() if isinstance(keep, dict) else [keep]
        if not all(value is None or isinstance(value, bool | int | float) for value in values):
            raise UndecodableJobError(f"opts.{key} is not a retention")
    parent = opts.get("parent")
    if parent is not None and not (
        isinstance(parent, dict) and all(isinstance(parent.get(k), str) for k in ("id", "queue"))
    ):
        raise UndecodableJobError("opts.parent is not a parent reference")
    if sum(1 for key in _PARENT_FAILURE_OPTIONS if opts.get(key)) > 1:
        raise UndecodableJobError("opts sets more than one parent-failure option")
    return opts


def _text(field: str, raw: str | None) -> str:
    """A text field, refused when Redis held bytes that are not UTF-8."""
    if raw is None:
        return ""
    if not _is_utf8(raw):
        raise UndecodableJobError(f"{field} is not UTF-8")
    return raw


def _is_utf8(text: str) -> bool:
    """Whether ``text`` came from UTF-8 bytes (surrogate-escaped bytes do not encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json(field: str, raw: str | None, default: Any) -> Any:
    """A JSON field, decoded without recursion trouble or numbers out of range."""
    if raw is None or raw == "":
        return default
    _text(field, raw)
    if _too_deep(raw):
        raise UndecodableJobError(f"{field} nested too deep (more than {MAX_DEPTH} levels)")
    try:
        value = json.loads(
            raw, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_constant
        )
    except _OutOfRange:
        raise UndecodableJobError(f"{field} holds a number out of range") from None
    except RecursionError:
        raise UndecodableJobError(f"{field} nested too deep") from None
    except ValueError:
        raise UndecodableJobError(f"{field} is not JSON") from None
    if _SURROGATE_ESCAPE.search(raw) and not _encodes(value):
        raise UndecodableJobError(f"{field} holds text that is not Unicode")
    return value


def _too_deep(raw: str) -> bool:
    """Whether the JSON text nests deeper than ``MAX_DEPTH``, counted without recursion
    (brackets inside strings do not count); cheap for the usual shallow document."""
    if raw.count("[") + raw.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", raw)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _encodes(value: Any) -> bool:
    """Whether ``value`` has no lone surrogate (a ``\\ud800`` escape), which no UTF-8
    response can carry."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _OutOfRange
    value = int(text)
    if abs(value) > int(1.7976931348623157e308):
        raise _OutOfRange
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange
    return value


def _constant(_: str) -> Any:
    """``NaN``, ``Infinity``: not JSON, and not numbers a job may carry."""
    raise _OutOfRange


def _optional_number(value: Any) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def _number(field: str, raw: str | None, default: int, low: int, high: int) -> int:
    """A numeric hash field (BullMQ writes decimal text), within ``low``..``high``."""
    if raw is None or raw == "":
        return default
    _text(field, raw)
    try:
        value = float(raw)
    except ValueError:
        raise UndecodableJobError(f"{field} is not a number") from None
    if not math.isfinite(value):
        raise UndecodableJobError(f"{field} is not a finite number")
    if not low <= value <= high:
        raise UndecodableJobError(f"{field} is out of range")
    return int(value)
