"""The job system's value types: states, options, records, fetch results, health."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ils.ids import ordered_id


class JobState(StrEnum):
    """Where a job is in its life. ``paused`` means waiting in a paused queue."""

    WAITING = "waiting"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    DELAYED = "delayed"
    PAUSED = "paused"


# Named sets of states, so callers do not spell them out each time.
FINISHED_STATES: frozenset[JobState] = frozenset({JobState.COMPLETED, JobState.FAILED})
PENDING_STATES: frozenset[JobState] = frozenset(
    {JobState.WAITING, JobState.DELAYED, JobState.PAUSED}
)
COUNTED_STATES: tuple[JobState, ...] = (
    JobState.WAITING,
    JobState.ACTIVE,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.DELAYED,
    JobState.PAUSED,
)
# States ``clean`` accepts (an active job is locked by its worker and is never cleaned).
CLEANABLE_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.DELAYED, JobState.WAITING, JobState.PAUSED}
)


#: BullMQ's lowest priority (Node refuses more: its Lua score packs priorities in 32
#: bits); 0 is no priority, 1 the most urgent.
MAX_PRIORITY = 2_097_152
#: The longest a job may be delayed: a year.
MAX_DELAY_MS = 365 * 24 * 3600 * 1000
#: The most attempts a job may ask for.
MAX_ATTEMPTS = 100


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options. ``None`` means "the queue's default from the catalogue".

    ``priority`` follows BullMQ: 0 is no priority (served first, FIFO), then 1 is the
    most urgent. ``job_id`` makes the add idempotent: adding an id the store already
    holds adds nothing and returns that id.

    The options carry their own rules (``problems``), the same for every store: a job
    that one store would take and another refuse could not fall back from Redis to the
    local store. Stores add only their physical limits (column lengths).
    """

    priority: int = 0
    delay_ms: int = 0
    attempts: int | None = None
    backoff_delay_ms: int | None = None
    job_id: str | None = None
    #: The company the job was made for: a ``company_admin`` sees and operates on
    #: their company's jobs only. Stamped by the producer from the request's session
    #: when not given; ``None`` for platform-wide work.
    company_id: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with these options, one line per option, without its value
        (safe to log and to show)."""
        problems: list[str] = []
        if not _is_int(self.priority) or not 0 <= self.priority <= MAX_PRIORITY:
            problems.append(f"priority: must be an integer from 0 to {MAX_PRIORITY}")
        if not _is_int(self.delay_ms) or not 0 <= self.delay_ms <= MAX_DELAY_MS:
            problems.append("delay_ms: must be an integer from 0 to one year")
        if self.attempts is not None and (
            not _is_int(self.attempts) or not 1 <= self.attempts <= MAX_ATTEMPTS
        ):
            problems.append(f"attempts: must be an integer from 1 to {MAX_ATTEMPTS}")
        if self.backoff_delay_ms is not None and (
            not _is_int(self.backoff_delay_ms) or self.backoff_delay_ms < 0
        ):
            problems.append("backoff_delay_ms: must be an integer >= 0")
        if self.job_id is not None and (
            not isinstance(self.job_id, str) or not self.job_id or is_node_integer(self.job_id)
        ):
            problems.append("job_id: must be a non-empty string that is not an integer")
        if self.company_id is not None and (
            not isinstance(self.company_id, str) or not self.company_id
        ):
            problems.append("company_id: must be a non-empty string")
        return problems


def new_job_id() -> str:
    """The id of a job added without one, whichever store takes it: time-ordered
    (:mod:`ils.ids`), so the local store's key index grows at its end. Never an id Node
    BullMQ refuses: 32 hex digits, all of them digits now and then, are beyond a
    double's precision (:func:`is_node_integer`)."""
    return ordered_id()


def is_node_integer(job_id: str) -> bool:
    """Whether Node BullMQ refuses ``job_id`` ("Custom Ids cannot be integers").

    Such ids collide with the ids Redis generates from the queue's counter, and a
    collision makes the later add a silent no-op. Node tests ``String(parseInt(id, 10))
    === id``: a canonical integer that a JS number holds exactly. Leading zeros, or
    digits beyond a double's precision (an all-digit hex uuid), pass.
    """
    if not job_id.lstrip("-").isdigit() or job_id.count("-") > 1:
        return False
    number = int(job_id)
    return str(number) == job_id and abs(number) < 10**21 and int(float(number)) == number


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add: its name, JSON-able payload (camelCase keys) and options."""

    name: str
    data: dict[str, Any]
    options: JobOptions = field(default_factory=JobOptions)

    def problems(self) -> list[str]:
        """What is wrong with the job's name, data and options (see ``JobOptions``)."""
        problems: list[str] = []
        if not isinstance(self.name, str) or not self.name:
            problems.append("name: must be a non-empty string")
        if not isinstance(self.data, dict):
            problems.append("data: must be a JSON object")
        return problems + self.options.problems()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Everything a store knows about one job. Times are epoch milliseconds."""

    id: str
    queue: str
    name: str
    data: dict[str, Any]
    state: JobState
    priority: int
    attempts: int
    attempts_made: int
    backoff_delay_ms: int
    delay_ms: int
    progress: Any
    result: Any
    failed_reason: str | None
    stacktrace: list[str]
    created_at_ms: int
    processed_at_ms: int | None
    finished_at_ms: int | None
    logs: list[str] = field(default_factory=list)
    store: str = ""
    company_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds the lock on; ``token`` proves it to the store.

    ``rate_window_ms``: on a rate-limited queue, the start of the limiter window this
    start was counted in (the one window over both stores), so what the limiter
    admitted can be checked window by window; ``None`` without a limit.
    """

    record: JobRecord
    token: str
    rate_window_ms: int | None = None

    @property
    def id(self) -> str:
        return self.record.id


@dataclass(frozen=True, slots=True)
class Fetch:
    """The answer to "give me the next job".

    ``job`` is the claimed job, or ``None``. With no job, ``wait_ms`` says how long
    before asking again can help: the rest of the rate-limit window when
    ``rate_limited``, the time until the next delayed job is due, or 0 when the
    queue is simply empty (then wait for work).
    """

    job: ClaimedJob | None
    wait_ms: int = 0
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """Reachability of a store and the facts an operator needs about it."""

    kind: str
    reachable: bool
    latency_ms: float | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobRef:
    """What an enqueue returns: where the job went and its id there.

    ``store`` is ``"redis"``, ``"local"``, or ``"outbox"`` for a job recorded in the
    caller's transaction and handed to Redis after commit (its id is then the id it
    will have in Redis).
    """

    queue: str
    name: str
    job_id: str
    store: str
