"""Test support for handler authors and for our own tests: a real job system, run to idle.

It lives in the package, not in ``tests/``, because teams writing handlers need what
our tests need (a job system on a throw-away database, its workers run until nothing
is left to do, assertions on what was queued), and every copy written inside a test
suite drifted: this repository had three ``eventually`` with three default timeouts.

Nothing here is a fake. :func:`open_test_system` opens the real
:class:`~ils.jobs.system.JobSystem` in local mode on a SQLite file in a directory the
caller owns, and :meth:`TestSystem.run_until_idle` runs the real
:class:`~ils.jobs.runner.Runner`: validation, retries with back-off, permanent
failures and stored results behave as they do in a worker process, so a handler that
passes here was run the way production runs it. A :class:`~ils.clock.ManualClock`
makes delays and back-off a matter of moving the clock instead of waiting.

* :func:`eventually` / :func:`still` / :func:`wait_until`: wait on a condition, never
  on a fixed sleep (a sleep long enough for a loaded CI machine is slow everywhere
  else, and one short enough for a laptop is flaky on CI).
* :func:`open_test_system`: ``async with`` it to get a :class:`TestSystem`::

      async with open_test_system(tmp_path, clock=ManualClock()) as ts:
          ts.register(OrderConfirmationEmail, send_confirmation)
          await ts.helpers.queue_order_confirmation_email("ord-1", "usr-1")
          result = await ts.run_until_idle()
          assert len(result.completed) == 1
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from sqlalchemy import Row, Select, and_, func, or_, select

from ils.clock import Clock, ManualClock
from ils.db.engine import READ_ONLY_OPTION
from ils.errors import ConfigurationError, ILSError
from ils.jobs.attempt import JobOutcome
from ils.jobs.helpers import JobHelpers
from ils.jobs.job_types import JobType, validate_payload
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import Handler, HandlerRegistry, PayloadT
from ils.jobs.runner import Runner
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.sql import ACTIVE, DELAYED, JOBS, WAITING
from ils.jobs.system import JobSystem
from ils.settings import Settings

__all__ = [
    "Check",
    "RunResult",
    "TestSystem",
    "eventually",
    "open_test_system",
    "still",
    "wait_until",
]

#: A condition to wait on: a function returning ``bool``, or an ``async`` one.
Check = Callable[[], bool] | Callable[[], Awaitable[bool]]
#: A failure message, or a function building it when the wait fails (so it can show
#: the state at that moment: worker logs, what is still queued).
Message = str | Callable[[], str]

#: How often an idle local-store worker looks for jobs in a test system. Jobs queued
#: in this process wake it at once; the poll is what notices a delayed job coming due
#: after a ``ManualClock`` moved, so it is kept short (the default is 100 ms).
TEST_POLL_INTERVAL_MS: Final = 20
#: How long :meth:`TestSystem.run_until_idle` lets running jobs finish when it stops.
#: Zero: an idle run has nothing running, and what a timed-out run still runs is what
#: it waited for in vain (cancelled at once, so the failure is reported at once).
STOP_GRACE_S: Final = 0.0
#: Jobs read per page when listing what is queued, and how many a failed assertion shows.
PAGE: Final = 500
SHOWN: Final = 20
#: The states of a job that is queued and not yet running.
QUEUED_STATES: Final = (JobState.WAITING, JobState.PAUSED, JobState.DELAYED)


# -- waiting on conditions ----------------------------------------------------------


async def _holds(check: Check) -> bool:
    result = check()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)


def _text(message: Message) -> str:
    return message() if callable(message) else message


async def eventually(
    check: Check,
    timeout: float = 5.0,  # noqa: ASYNC109 (how long the condition may take, not a cancel)
    interval: float = 0.01,
    message: Message = "",
) -> None:
    """Poll ``check`` until it holds; ``AssertionError`` after ``timeout`` seconds.

    The test goes on as soon as the condition holds, and waits as long as a slow
    machine needs, up to ``timeout``. ``message`` may be a function, called only on
    failure, to describe the state the condition was waiting on.
    """
    deadline = time.monotonic() + timeout
    while not await _holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(_text(message) or f"condition not met in {timeout} s")
        await asyncio.sleep(interval)


async def still(
    check: Check, for_s: float = 0.3, interval: float = 0.01, message: Message = ""
) -> None:
    """Poll ``check`` for ``for_s`` seconds; ``AssertionError`` as soon as it holds.

    For what must *not* happen. Proving an absence needs some window, so this is the
    one wait that always takes its whole time: keep ``for_s`` short.
    """
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        if await _holds(check):
            raise AssertionError(_text(message) or "condition became true")
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01, message: Message = ""
) -> None:
    """:func:`eventually` for synchronous code (a thread, a child process)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(_text(message) or f"condition not met in {timeout} s")
        time.sleep(interval)


# -- a test system --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one :meth:`TestSystem.run_until_idle` ran: every attempt, in the order each
    ended.

    Attempts rather than jobs, because that is what a retry test asserts on: a job
    that failed twice and then completed shows two ``retried`` outcomes and one
    ``completed``.
    """

    outcomes: tuple[JobOutcome, ...]

    def _in(self, *states: JobState) -> list[JobOutcome]:
        return [outcome for outcome in self.outcomes if outcome.state in states]

    @property
    def completed(self) -> list[JobOutcome]:
        """Attempts that completed their job."""
        return self._in(JobState.COMPLETED)

    @property
    def failed(self) -> list[JobOutcome]:
        """Attempts that failed their job for good (a permanent error, or the last
        attempt); ``reason`` says why."""
        return self._in(JobState.FAILED)

    @property
    def retried(self) -> list[JobOutcome]:
        """Attempts that failed and left the job to run again: ``delayed`` for its
        back-off, or ``waiting`` when the back-off is 0."""
        return self._in(JobState.DELAYED, JobState.WAITING)


class TestSystem:
    """A local-mode :class:`JobSystem` with the handlers under test, and ways to look.

    Handlers are registered here (by payload model, as workers do) rather than on a
    worker, so :meth:`run_until_idle` knows which queues to run: the queues of the
    registered handlers. Jobs of other queues stay queued, where :meth:`enqueued`
    and :meth:`assert_enqueued` see them: that is how a test checks that a handler
    queued follow-up work without running it.

    Local mode only: whether a delayed job is due is read from the local store's
    table, and a shared Redis would mix the jobs of concurrent tests.
    """

    #: A class named ``Test*`` imported into a test module is not a test class.
    __test__: ClassVar[bool] = False

    def __init__(self, system: JobSystem) -> None:
        if system.redis is not None:
            raise ConfigurationError("a TestSystem needs a job system in local mode (no Redis)")
        self.system = system
        #: The handlers :meth:`run_until_idle` runs; pass it to a worker's ``register``
        #: (``email.register(ts.registry, ts.system.worker_context())``) to test the
        #: built-in handlers.
        self.registry = HandlerRegistry(system.job_types)

    @property
    def helpers(self) -> JobHelpers:
        """The system's job helpers: queue jobs the way application code does."""
        return self.system.helpers

    @property
    def clock(self) -> Clock:
        """The clock the system runs on (the ``ManualClock`` given to open it, if any)."""
        return self.system.clock

    def register(self, model: type[PayloadT], handler: Handler[PayloadT]) -> None:
        """Run ``handler`` for the jobs whose payload model is ``model``
        (:meth:`HandlerRegistry.register`: a second handler for one job is refused)."""
        self.registry.register(model, handler)

    async def enqueued(self, queue: str, name: str | None = None) -> list[JobRecord]:
        """The jobs of ``queue`` waiting to run (waiting, paused or delayed), oldest
        first; only those named ``name`` when given."""
        found: list[JobRecord] = []
        for store in self.system.stores():
            for state in QUEUED_STATES:
                # Stores list newest first; reversed, equal creation times (a
                # ManualClock) keep the order the jobs were added in.
                jobs = reversed(await _every_job(store, queue, state))
                found += [job for job in jobs if name is None or job.name == name]
        found.sort(key=lambda job: job.created_at_ms)
        return found

    async def assert_enqueued(self, queue: str, name: str, **fields: Any) -> JobRecord:
        """The oldest queued ``name`` job of ``queue`` whose payload has ``fields``.

        Fields are named as in the payload model (``order_id``) or its JSON
        (``orderId``), and compared with the model's value (``date(2026, 1, 5)``) or
        its JSON form (``"2026-01-05"``).

        Raises:
            AssertionError: no such job; the message lists what is queued instead.
                Also for a field the job's model does not have (a typo would
                otherwise read as "not enqueued").
            UnknownJobTypeError: ``name`` is no job of ``queue``.
        """
        job_type = self.system.job_types.get(queue, name)
        names = _field_names(job_type)
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise AssertionError(
                f"{', '.join(unknown)}: not a field of {job_type.model.__name__} "
                f"({queue}/{name}); its fields: {', '.join(sorted(set(names.values())))}"
            )
        wanted = {names[key]: value for key, value in fields.items()}
        queued = await self.enqueued(queue)
        for job in queued:
            if job.name == name and _has_fields(job_type, job, wanted):
                return job
        raise AssertionError(_not_enqueued(queue, name, fields, queued))

    async def job(self, queue: str, job_id: str) -> JobRecord:
        """A job in full (state, result, logs, failure), whatever its state.

        Raises:
            AssertionError: no store holds it (never queued, or removed by retention).
        """
        record = await self.system.admin.find(queue, job_id)
        if record is None:
            raise AssertionError(f"no job {job_id!r} on queue {queue!r}")
        return record

    async def run_until_idle(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 (a timed-out run must still stop its runner)
        *,
        advance_clock: bool = False,
    ) -> RunResult:
        """Run the registered handlers' queues until none has work, then stop.

        Idle means no job of those queues is waiting, active or delayed and due, and
        no handler is running (so the last outcome has been reported). Delayed jobs
        not yet due are left delayed: on a real clock they are for a later call; on a
        ``ManualClock``, ``advance_clock=True`` moves the clock to each one's due time
        and runs it, so back-off and delays take no real time.

        Raises:
            AssertionError: not idle within ``timeout`` seconds; says what was left.
            TypeError: ``advance_clock`` on a system without a ``ManualClock``.
            ConfigurationError: no handler is registered (nothing would run).
        """
        clock = self.clock
        if advance_clock and not isinstance(clock, ManualClock):
            raise TypeError("advance_clock needs a test system opened with clock=ManualClock()")
        queues = [key for key in self.system.catalogue if self.registry.registered(key)]
        if not queues:
            raise ConfigurationError("register a handler first: no queue would be run")
        outcomes: list[JobOutcome] = []
        runner = Runner(
            self.system.stores(),
            [self.system.catalogue[key] for key in queues],
            self.registry,
            listeners=[outcomes.append],
        )
        busy: list[str] = []

        async def idle() -> bool:
            busy[:] = await self._busy(runner, queues)
            return not busy

        def left() -> str:
            return f"not idle after {timeout} s: {'; '.join(busy)}"

        deadline = time.monotonic() + timeout
        runner.start()
        try:
            while True:
                await eventually(idle, max(deadline - time.monotonic(), 0.0), message=left)
                if not isinstance(clock, ManualClock) or not advance_clock:
                    break
                due = await self._next_due(queues)
                if due is None or due <= clock.now_ms():
                    break
                clock.advance(due - clock.now_ms())
        finally:
            await runner.stop(STOP_GRACE_S)
        return RunResult(tuple(outcomes))

    async def _busy(self, runner: Runner, queues: Sequence[str]) -> list[str]:
        """What keeps ``runner`` busy, one phrase per queue; empty when idle.

        The store's side is one query, so one snapshot: read state by state, a job
        claimed between two reads (delayed, then active) would be seen in neither.
        The runner is asked before and after it: a job claimed before the snapshot
        and finished within it still has its outcome to report until it leaves the
        runner.
        """
        before = runner.active
        paused = {queue for queue in queues if await self.system.local.is_paused(queue)}
        now = self.clock.now_ms()
        work = or_(
            JOBS.c.state == ACTIVE,
            and_(JOBS.c.queue.not_in(paused), JOBS.c.state == WAITING),
            and_(JOBS.c.queue.not_in(paused), JOBS.c.state == DELAYED, JOBS.c.run_at_ms <= now),
        )
        query = (
            select(JOBS.c.queue, JOBS.c.state, func.count())
            .where(JOBS.c.queue.in_(queues), work)
            .group_by(JOBS.c.queue, JOBS.c.state)
        )
        rows = await self._read(query)
        running = max(before, runner.active)
        busy = [f"{running} handler(s) running"] if running else []
        shown = {WAITING: "waiting", ACTIVE: "active", DELAYED: "delayed and due"}
        for queue in queues:
            parts = [f"{count} {shown[state]}" for q, state, count in rows if q == queue]
            if parts:
                busy.append(f"{queue}: {', '.join(sorted(parts))}")
        return busy

    async def _next_due(self, queues: Sequence[str]) -> int | None:
        """When the first delayed job of the unpaused ``queues`` is due (epoch ms)."""
        running = [queue for queue in queues if not await self.system.local.is_paused(queue)]
        query = select(func.min(JOBS.c.run_at_ms)).where(
            JOBS.c.queue.in_(running), JOBS.c.state == DELAYED
        )
        [(due,)] = await self._read(query)
        return None if due is None else int(due)

    async def _read(self, query: Select[Any]) -> Sequence[Row[Any]]:
        """Rows of the local store's tables, in a read-only transaction: under WAL it
        neither waits for nor holds up the workers' writes."""
        async with self.system.engine.connect() as conn:
            reader = await conn.execution_options(**{READ_ONLY_OPTION: True})
            return (await reader.execute(query)).all()


async def _every_job(store: JobStore, queue: str, state: JobState) -> list[JobRecord]:
    """Every job of ``queue`` in ``state``, newest first, page by page."""
    found: list[JobRecord] = []
    while True:
        page = await store.list_jobs(queue, state, offset=len(found), limit=PAGE)
        found += page
        if len(page) < PAGE:
            return found


def _field_names(job_type: JobType) -> dict[str, str]:
    """Python name of each field of the job's model, by Python name and by JSON name."""
    names: dict[str, str] = {}
    for name, info in job_type.model.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def _has_fields(job_type: JobType, job: JobRecord, wanted: Mapping[str, Any]) -> bool:
    try:
        payload = validate_payload(job_type, job.data)
    except ILSError:
        return False
    as_json = payload.model_dump(mode="json")
    return all(
        value == getattr(payload, name) or value == as_json.get(name)
        for name, value in wanted.items()
    )


def _not_enqueued(
    queue: str, name: str, fields: Mapping[str, Any], queued: Sequence[JobRecord]
) -> str:
    """The failure of :meth:`TestSystem.assert_enqueued`: what was wanted, and what is
    queued instead (the payloads too: a test database holds no patient data)."""
    wanted = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    head = f"no {queue}/{name} job{f' with {wanted}' if wanted else ''} is enqueued"
    if not queued:
        return f"{head}; nothing is enqueued on {queue!r}"
    lines = [f"  {job.name} {job.data} ({job.state}, id {job.id})" for job in queued[:SHOWN]]
    if len(queued) > SHOWN:
        lines.append(f"  ... and {len(queued) - SHOWN} more")
    return f"{head}; enqueued on {queue!r}:\n" + "\n".join(lines)


def _settings(where: Path | str | Settings, overrides: Mapping[str, Any]) -> Settings:
    """The settings of a test system: local mode on SQLite under ``where``, whatever
    the environment says (an ``ILS_REDIS_URL`` or ``ILS_DATABASE_URL`` exported for a
    development server must not point a test at it)."""
    if isinstance(where, Settings):
        if overrides:
            raise TypeError("with a Settings object, set the overrides on it")
        settings = where
    else:
        fields: dict[str, Any] = {
            "database_url": "",
            "redis_url": None,
            "redis_host": None,
            "redis_sentinels": None,
            "local_poll_interval_ms": TEST_POLL_INTERVAL_MS,
            **overrides,
        }
        settings = Settings(_env_file=None, data_dir=Path(where), **fields)
    if settings.redis_connection() is not None:
        raise ConfigurationError("a test system runs in local mode: these settings name Redis")
    return settings


@asynccontextmanager
async def open_test_system(
    where: Path | str | Settings, *, clock: Clock | None = None, **settings: Any
) -> AsyncIterator[TestSystem]:
    """A :class:`TestSystem` on a SQLite database in the directory ``where``, closed
    on exit.

    Give a fresh directory (pytest's ``tmp_path``) for a fresh database; opening the
    same one again is how a test restarts a process. ``settings`` are
    :class:`~ils.settings.Settings` fields (``queues={"email": {"attempts": 2}}``);
    or pass a whole ``Settings`` as ``where`` (in local mode). ``clock`` is the time
    of the stores, delays and back-off: a ``ManualClock`` lets the test move it.
    """
    system = await JobSystem.open(_settings(where, settings), clock=clock)
    try:
        yield TestSystem(system)
    finally:
        await system.close()
