"""The job system's value types: states, options, records, fetch results, health."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options. ``None`` means "the queue's default from the catalogue".

    ``priority`` follows BullMQ: 0 is no priority (served first, FIFO), then 1 is the
    most urgent. ``job_id`` makes the add idempotent: adding an id the store already
    holds adds nothing and returns that id.
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


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add: its name, JSON-able payload (camelCase keys) and options."""

    name: str
    data: dict[str, Any]
    options: JobOptions = field(default_factory=JobOptions)


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
    """A job a worker holds the lock on; ``token`` proves it to the store."""

    record: JobRecord
    token: str

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
