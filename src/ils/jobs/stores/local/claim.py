"""The worker-side transactions of the local store: claim, complete, retention.

Every function here runs inside a transaction the caller opened, so ``complete(...,
fetch_next=True)`` can finish one job and claim the next in one commit.

How claiming stays exclusive:

* SQLite: every transaction is ``BEGIN IMMEDIATE`` (see :mod:`ils.db.engine`), so
  writers are serialized across processes and the claim's read-then-write cannot
  interleave with another.
* PostgreSQL: the job row is picked with ``FOR UPDATE SKIP LOCKED`` (concurrent
  claimers skip each other's rows instead of waiting), and on a rate-limited queue the
  ``ils_queue_state`` row is read ``FOR UPDATE`` first, so the window counter is exact
  across processes. SQLite's compiler drops ``FOR UPDATE``; one statement serves both.

The statements of the hot path are built once, with bound parameters, so SQLAlchemy
reuses their compiled form instead of rebuilding and recompiling them per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, select, update

from ils.clock import Clock
from ils.jobs.catalogue import QueueConfig, RateLimit, Retention
from ils.jobs.model import ClaimedJob, Fetch
from ils.jobs.stores.local.sql import (
    ACTIVE,
    COMPLETED,
    DELAYED,
    JOBS,
    QUEUES,
    WAITING,
    QueueSwitches,
    insert_ignoring_conflicts,
    record_from_row,
)

#: Delayed jobs promoted per claim at most, so one claim stays short after downtime.
PROMOTE_BATCH = 1000

_SWITCHES = select(QUEUES.c.paused, QUEUES.c.rl_window_start_ms, QUEUES.c.rl_count).where(
    QUEUES.c.queue == bindparam("q")
)
_SWITCHES_LOCKED = _SWITCHES.with_for_update()

_PROMOTE = (
    update(JOBS)
    .where(
        JOBS.c.seq.in_(
            select(JOBS.c.seq)
            .where(
                JOBS.c.queue == bindparam("q"),
                JOBS.c.state == DELAYED,
                JOBS.c.run_at_ms <= bindparam("now"),
            )
            .order_by(JOBS.c.run_at_ms)
            .limit(PROMOTE_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    .values(state=WAITING, delay_ms=0)
)


def _claim_statement(*, unless_paused: bool) -> Any:
    """``UPDATE ... WHERE seq = (the most urgent waiting job) RETURNING *``.

    ``unless_paused`` folds the pause check into the statement, which saves reading
    the queue's state row on queues without a rate limit (where it is not locked).
    """
    where = [JOBS.c.queue == bindparam("q"), JOBS.c.state == WAITING]
    if unless_paused:
        where.append(~exists().where(QUEUES.c.queue == bindparam("q"), QUEUES.c.paused))
    pick = (
        select(JOBS.c.seq)
        .where(*where)
        .order_by(JOBS.c.priority, JOBS.c.run_at_ms, JOBS.c.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(JOBS)
        .where(JOBS.c.seq == pick)
        .values(
            state=ACTIVE,
            lock_token=bindparam("tok"),
            lock_until_ms=bindparam("until"),
            attempts_started=JOBS.c.attempts_started + 1,
            processed_at_ms=bindparam("now"),
        )
        .returning(*JOBS.c)
    )


_CLAIM = _claim_statement(unless_paused=False)
_CLAIM_UNLESS_PAUSED = _claim_statement(unless_paused=True)

_NEXT_DUE = select(func.min(JOBS.c.run_at_ms)).where(
    JOBS.c.queue == bindparam("q"), JOBS.c.state == DELAYED
)

_OPEN_WINDOW = (
    update(QUEUES)
    .where(QUEUES.c.queue == bindparam("q"))
    .values(rl_window_start_ms=bindparam("now"), rl_count=1)
)
_COUNT_IN_WINDOW = (
    update(QUEUES).where(QUEUES.c.queue == bindparam("q")).values(rl_count=QUEUES.c.rl_count + 1)
)

#: The job is active and the token holds an unexpired lock on it. An expired lock is
#: lost even before another worker takes the job, as in BullMQ, where the lock key
#: expires on its own.
HOLDING = (
    JOBS.c.queue == bindparam("q"),
    JOBS.c.id == bindparam("jid"),
    JOBS.c.state == ACTIVE,
    JOBS.c.lock_token == bindparam("tok"),
    JOBS.c.lock_until_ms >= bindparam("now"),
)

_COMPLETE = (
    update(JOBS)
    .where(*HOLDING)
    .values(
        state=COMPLETED,
        result=bindparam("res", type_=JOBS.c.result.type),
        finished_at_ms=bindparam("now"),
        attempts_made=JOBS.c.attempts_made + 1,
        lock_token=None,
        lock_until_ms=None,
    )
)


def holding_params(queue: str, job: ClaimedJob, now: int) -> dict[str, Any]:
    """The parameters of ``HOLDING`` for ``job``."""
    return {"q": queue, "jid": job.id, "tok": job.token, "now": now}


def read_switches(conn: Connection, queue: str, *, lock: bool = False) -> QueueSwitches:
    """The queue's pause flag and rate-limit window, locked for update when asked.

    A locked read creates the row on first use, so there is always a row to lock.
    """
    query = _SWITCHES_LOCKED if lock else _SWITCHES
    row = conn.execute(query, {"q": queue}).first()
    if row is None and lock:
        insert = insert_ignoring_conflicts(conn.dialect.name, QUEUES, "queue").values(
            queue=queue, paused=False, rl_window_start_ms=0, rl_count=0
        )
        conn.execute(insert)
        row = conn.execute(query, {"q": queue}).first()
    if row is None:
        return QueueSwitches()
    return QueueSwitches(bool(row.paused), row.rl_window_start_ms, row.rl_count)


def rate_limit_wait(config: QueueConfig, switches: QueueSwitches, now: int) -> int:
    """Milliseconds left in a full rate-limit window, 0 when a job may be taken.

    BullMQ's fixed window: it opens with the first job taken after the previous one
    ended and admits ``max`` jobs until it ends.
    """
    limit = config.rate_limit
    if limit is None:
        return 0
    window_end = switches.window_start_ms + limit.duration_ms
    if now >= window_end or switches.window_count < limit.max:
        return 0
    return window_end - now


def claim(conn: Connection, config: QueueConfig, token: str, clock: Clock) -> Fetch:
    """Claim the most urgent due job of ``config``'s queue for ``token``.

    Order of checks as in BullMQ's ``moveToActive``: promote due delayed jobs, then
    the rate limit, then the pause flag, then take a job. The time is read once the
    transaction holds what it waits for (the rate window's row): read before, a claim
    that queued behind other writers would be dated in a window that already ended.
    """
    if config.rate_limit is not None:
        return _claim_rate_limited(conn, config, config.rate_limit, token, clock)
    queue = config.key
    now = clock.now_ms()
    conn.execute(_PROMOTE, {"q": queue, "now": now})
    row = conn.execute(_CLAIM_UNLESS_PAUSED, _claim_params(config, token, now)).first()
    if row is None:
        return _nothing(conn, queue, now, read_switches(conn, queue).paused)
    return Fetch(ClaimedJob(record_from_row(row, paused=False), token))


def _claim_rate_limited(
    conn: Connection, config: QueueConfig, limit: RateLimit, token: str, clock: Clock
) -> Fetch:
    """Claim under the queue's rate limit, its window row locked until commit."""
    queue = config.key
    switches = read_switches(conn, queue, lock=True)
    now = clock.now_ms()
    conn.execute(_PROMOTE, {"q": queue, "now": now})
    limited_ms = rate_limit_wait(config, switches, now)
    if limited_ms > 0:
        return Fetch(None, wait_ms=limited_ms, rate_limited=True)
    if switches.paused:
        return _nothing(conn, queue, now, paused=True)
    row = conn.execute(_CLAIM, _claim_params(config, token, now)).first()
    if row is None:
        return _nothing(conn, queue, now, paused=False)
    window_over = now >= switches.window_start_ms + limit.duration_ms
    opens = window_over or switches.window_count == 0
    conn.execute(_OPEN_WINDOW if opens else _COUNT_IN_WINDOW, {"q": queue, "now": now})
    window = now if opens else switches.window_start_ms
    return Fetch(ClaimedJob(record_from_row(row, paused=False), token, rate_window_ms=window))


def take_rate_token(conn: Connection, config: QueueConfig, clock: Clock) -> tuple[int, int]:
    """Count one start in the queue's rate-limit window without claiming a job here:
    ``(0, window start)`` when counted, else ``(ms left in the full window, 0)``.

    In Redis mode the window in this table is the one limit of the queue over both
    stores: the Redis consumers take a token here before each fetch, so jobs running
    from both stores during a fall-back never exceed the limit together.
    """
    limit = config.rate_limit
    if limit is None:
        return 0, 0
    switches = read_switches(conn, config.key, lock=True)
    now = clock.now_ms()  # after the lock, as in ``claim``
    limited_ms = rate_limit_wait(config, switches, now)
    if limited_ms > 0:
        return limited_ms, 0
    opens = now >= switches.window_start_ms + limit.duration_ms or switches.window_count == 0
    conn.execute(_OPEN_WINDOW if opens else _COUNT_IN_WINDOW, {"q": config.key, "now": now})
    return 0, now if opens else switches.window_start_ms


_UNCOUNT_IN_WINDOW = (
    update(QUEUES)
    .where(
        QUEUES.c.queue == bindparam("q"),
        QUEUES.c.rl_window_start_ms == bindparam("start"),
        QUEUES.c.rl_count > 0,
    )
    .values(rl_count=QUEUES.c.rl_count - 1)
)


def refund_rate_token(conn: Connection, queue: str, window_start_ms: int) -> None:
    """Give back a token whose fetch found no job (it started nothing), only to the
    window it was taken in. Given back to a later window it would uncount a start that
    did happen there (the window could then reopen and admit a full window's starts
    beside them). Within its own window the count stays at least the starts made in
    it, so a window emptied by refunds had none, and reopening it at the next start
    is what BullMQ's window does."""
    conn.execute(_UNCOUNT_IN_WINDOW, {"q": queue, "start": window_start_ms})


def _claim_params(config: QueueConfig, token: str, now: int) -> dict[str, Any]:
    return {"q": config.key, "tok": token, "until": now + config.lock_duration_ms, "now": now}


def _nothing(conn: Connection, queue: str, now: int, paused: bool) -> Fetch:
    """No job: wait for work (paused or empty) or until the next delayed job is due."""
    if paused:
        return Fetch(None, wait_ms=0)
    next_due = conn.scalar(_NEXT_DUE, {"q": queue})
    return Fetch(None, wait_ms=0 if next_due is None else max(int(next_due) - now, 1))


def complete(conn: Connection, queue: str, job: ClaimedJob, result: Any, now: int) -> bool:
    """Mark ``job`` completed if its token still holds the lock; whether it did."""
    done = conn.execute(_COMPLETE, {**holding_params(queue, job, now), "res": result})
    return done.rowcount == 1


_AGED = select(JOBS.c.seq).where(
    JOBS.c.queue == bindparam("q"),
    JOBS.c.state == bindparam("state"),
    JOBS.c.finished_at_ms <= bindparam("cutoff"),
)
_PRUNE_AGED = delete(JOBS).where(JOBS.c.seq.in_(_AGED.with_for_update(skip_locked=True)))
_SURPLUS = (
    select(JOBS.c.seq)
    .where(JOBS.c.queue == bindparam("q"), JOBS.c.state == bindparam("state"))
    .order_by(JOBS.c.finished_at_ms.desc(), JOBS.c.seq.desc())
    .offset(bindparam("keep"))
)
_PRUNE_SURPLUS = delete(JOBS).where(JOBS.c.seq.in_(_SURPLUS.with_for_update(skip_locked=True)))


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """Which retention deletes a finish runs (see ``RetentionSchedule``)."""

    by_age: bool = True
    by_count: bool = True


#: Both deletes: what a rare finish (a stalled job failing) runs.
FULL_PRUNE = PrunePlan()


class RetentionSchedule:
    """Spreads the retention deletes of one process over its finishes.

    The count delete walks the ``count`` newest rows of the state, so it runs on every
    ``count // COUNT_SPREAD``-th finish (every one for small counts): the kept set
    overshoots by less than 1/COUNT_SPREAD of the count per process between runs. The
    age delete is a cheap index probe but still a statement, so it runs at most once a
    second per queue (every time when the age is 0, which keeps nothing).
    """

    COUNT_SPREAD = 20
    AGE_EVERY_MS = 1000

    def __init__(self) -> None:
        self._finishes: dict[tuple[str, str], int] = {}
        self._aged_at: dict[tuple[str, str], int] = {}

    def plan(self, queue: str, state: str, keep: Retention, now: int) -> PrunePlan:
        """What this finish of a ``state`` job of ``queue`` should delete."""
        key = (queue, state)
        seen = self._finishes.get(key, 0) + 1
        by_count = seen >= max(keep.count // self.COUNT_SPREAD, 1)
        self._finishes[key] = 0 if by_count else seen
        last = self._aged_at.get(key)
        by_age = keep.age_s == 0 or last is None or now - last >= self.AGE_EVERY_MS
        if by_age:
            self._aged_at[key] = now
        return PrunePlan(by_age, by_count)


def prune(
    conn: Connection,
    queue: str,
    state: str,
    keep: Retention,
    now: int,
    plan: PrunePlan = FULL_PRUNE,
) -> None:
    """Delete finished jobs of ``state`` past the retention's age and count.

    BullMQ's rules: a job finished at or before ``now - age`` goes, and only the newest
    ``count`` are kept (0 keeps none). Rows another transaction is deleting are skipped
    rather than waited for.
    """
    params = {"q": queue, "state": state}
    if plan.by_age:
        conn.execute(_PRUNE_AGED, {**params, "cutoff": now - keep.age_s * 1000})
    if plan.by_count:
        conn.execute(_PRUNE_SURPLUS, {**params, "keep": keep.count})
