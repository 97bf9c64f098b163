"""The local store's sampled wait and run times of finished jobs (the latency charts).

Two statements per call, whatever the queue holds, both over the finished-jobs index
(``ix_ils_jobs_finished``: queue, state, finish time, seq):

1. the finished jobs of each bucket, one range count per bucket in one statement
   (SQLite counts an index range without sorting, where ``GROUP BY`` on the bucket
   sorts every row: 12 ms against 43 ms for 100,000 jobs);
2. the jobs themselves, keeping in each crowded bucket about ``per_bucket`` of them
   (a few more are trimmed here): those whose ``seq`` hashes below the bucket's share.
   The hash is Fibonacci hashing modulo the prime 2**31 - 1, so jobs added in a
   regular pattern (an order adds an e-mail, two PDFs and a notification, so its PDF
   jobs' seqs step by four) are still picked evenly, where ``seq % n`` would keep one
   kind of PDF and drop the other. The test runs on the index entry, so only the kept
   rows are read, and they come back joined into one text per bucket
   (``group_concat``, ``string_agg``): 60 rows to decode rather than 6,000.

Measured on SQLite with 100,000 jobs finished within the hour, on an idle machine:
about 50 ms for the hour's 60 buckets (one statement numbering rows with window
functions took 140 to 330 ms: SQLite sorts the window's rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, String, case, cast, func, select

from ils.jobs.stores.base import JobTiming
from ils.jobs.stores.local.sql import COMPLETED, FAILED, JOBS

#: The hash's modulus (a prime) and multiplier (the modulus over the golden ratio):
#: their product stays below 2**62, inside SQLite's and PostgreSQL's 64-bit integers.
PRIME = 2**31 - 1
MULTIPLIER = 1_327_217_884


def _finished_in(queue: str, since_ms: int, until_ms: int) -> list[ColumnElement[bool]]:
    return [
        JOBS.c.queue == queue,
        JOBS.c.state.in_((COMPLETED, FAILED)),
        JOBS.c.finished_at_ms >= since_ms,
        JOBS.c.finished_at_ms < until_ms,
    ]


def _counts(
    conn: Connection, queue: str, since_ms: int, until_ms: int, bucket_ms: int
) -> dict[int, int]:
    """Finished jobs per bucket index (buckets without jobs left out)."""
    starts = range(since_ms, until_ms, bucket_ms)
    ranges = [
        select(func.count())
        .select_from(JOBS)
        .where(*_finished_in(queue, start, min(start + bucket_ms, until_ms)))
        .scalar_subquery()
        for start in starts
    ]
    if not ranges:
        return {}
    counts = conn.execute(select(*ranges)).one()
    return {n: int(count) for n, count in enumerate(counts) if count}


def _decode(
    text: str, since_ms: int, bucket: int, bucket_ms: int, per_bucket: int
) -> list[tuple[int, int | None, int]]:
    """``finished:wait:run,...`` (finish from the bucket's start, no wait for a retried
    job) as timings, at most ``per_bucket`` of them, evenly spread."""
    start = since_ms + bucket * bucket_ms
    found: list[tuple[int, int | None, int]] = []
    for item in text.split(","):
        finished, wait, run = item.split(":")
        found.append((start + int(finished), max(int(wait), 0) if wait else None, max(int(run), 0)))
    if len(found) > per_bucket:
        found.sort(key=lambda timing: timing[0])
        found = [found[at * len(found) // per_bucket] for at in range(per_bucket)]
    return found


def read_timings(
    conn: Connection, queue: str, since_ms: int, until_ms: int, bucket_ms: int, per_bucket: int
) -> list[JobTiming]:
    """Sampled timings (see ``JobStore.finished_timings``), each weighted by its
    bucket's jobs over the jobs kept from that bucket.

    ``run_at_ms`` is when the job last became due: the add time plus its delay for a
    job on its first attempt, which is the only kind that gets a wait time.
    """
    if until_ms <= since_ms or bucket_ms <= 0:
        return []
    per_bucket = max(per_bucket, 1)
    jobs = _counts(conn, queue, since_ms, until_ms, bucket_ms)
    if not jobs:
        return []
    bucket = (JOBS.c.finished_at_ms - since_ms) // bucket_ms
    wait = case((JOBS.c.attempts_made <= 1, JOBS.c.processed_at_ms - JOBS.c.run_at_ms))
    item = (
        cast(JOBS.c.finished_at_ms - since_ms - bucket * bucket_ms, String)
        + ":"
        + func.coalesce(cast(wait, String), "")
        + ":"
        + cast(JOBS.c.finished_at_ms - JOBS.c.processed_at_ms, String)
    )
    joined = (
        func.string_agg(item, ",") if conn.dialect.name == "postgresql" else func.group_concat(item)
    )
    statement = (
        select(bucket.label("bucket"), joined)
        .where(*_finished_in(queue, since_ms, until_ms), JOBS.c.processed_at_ms.is_not(None))
        .group_by(bucket)
    )
    shares: dict[Any, Any] = {
        n: PRIME * per_bucket // count for n, count in jobs.items() if count > per_bucket
    }
    if shares:
        picked = (JOBS.c.seq % PRIME) * MULTIPLIER % PRIME
        statement = statement.where(picked < case(shares, value=bucket, else_=PRIME))
    found: list[JobTiming] = []
    for n, text in conn.execute(statement):
        kept = _decode(str(text), since_ms, int(n), bucket_ms, per_bucket)
        # On PostgreSQL a job finishing between the statements may be kept uncounted.
        weight = max(jobs.get(int(n), 0), len(kept)) / len(kept)
        found += [JobTiming(finished, wait, run, weight) for finished, wait, run in kept]
    return found
