"""Job-system times as the monitoring API answers them.

The job stores keep times as epoch milliseconds; every body of the monitoring API
(jobs, failures, latency, workers) answers ISO datetimes in UTC instead. The one
conversion lives here so those bodies cannot drift apart on it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_from_ms(ms: int) -> datetime:
    """The UTC datetime of ``ms`` epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def utc_from_ms_or_none(ms: int | None) -> datetime | None:
    """:func:`utc_from_ms` of a time that may not have happened yet (``None``)."""
    return None if ms is None else utc_from_ms(ms)
