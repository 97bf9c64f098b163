"""Failed jobs grouped by what went wrong, and retrying or removing a whole group.

Why: after an outage an operator faces thousands of failed jobs that are a handful of
problems ("SMTP 451 for every e-mail", "no lens data for these 40 orders"). Listing
them one by one hides that; grouping them by a fingerprint shows each problem once,
with how often, since when and until when it happened, and lets one action retry (or
remove) every job of a problem once it is fixed.

The fingerprint is (queue, job name, exception type, message) with whatever differs
between occurrences of the same problem masked: e-mail addresses, uuids, ids and
numbers. Masking also keeps the identifiers and e-mail addresses a message may carry
out of the group's description, which is what the page and the API show.

Cost, bounded on purpose: grouping reads the newest :data:`RECENT_PER_QUEUE` failed
jobs of each queue (both stores merged, newest first, through :class:`JobAdmin`, so in
the caller's company scope), never the whole failed set; the report says how many
failed jobs exist and whether some were left unread, so a count is never silently
partial. A group action gathers the group's members among the newest
:data:`ACTION_SCAN_LIMIT` failed jobs of its queue, :data:`ACTION_MAX_JOBS` at most
(the answer says when some remain), and acts on them :data:`BATCH_SIZE` at a time
through the admin's own retry and remove (scope checked per job; a job to remove is
read again first: still failed, still of the group), yielding to the event loop
between batches so other requests and workers of the process keep running. Nothing
runs as one long script or statement holding the store: each job is its own small
operation.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from ils.errors import InvalidJobStateError, JobNotFoundError, NotFoundError
from ils.jobs.admin import SCAN_LIMIT, JobAction, JobAdmin
from ils.jobs.model import JobRecord, JobState
from ils.jobs.stores.base import SCAN_PAGE

#: Failed jobs read per queue to build the groups (both stores merged, newest first).
#: Measured with 100,000 failed jobs in one queue on a busy, shared 2-core machine:
#: reading and grouping 500 takes 50-115 ms in local and Redis mode, for every company
#: or one, where 1,000 took 110-200 ms; the failure page's budget is 300 ms (p50).
RECENT_PER_QUEUE: Final = 500
#: Failed jobs of the group's queue looked at to gather a group before acting on it.
ACTION_SCAN_LIMIT: Final = SCAN_LIMIT
#: Jobs retried or removed between two yields to the event loop.
BATCH_SIZE: Final = 100
#: Jobs one group action retries or removes at most. In local mode the action runs in
#: the request's transaction, and on SQLite that holds the database's write lock: at
#: 2.5-3.5 ms a job (measured on a busy 2-core machine), a thousand is a few seconds.
ACTION_MAX_JOBS: Final = 1_000
#: Longest masked message kept in a fingerprint (after masking and folding spaces).
MESSAGE_CHARS: Final = 300
#: Longest sample stack trace returned (its end: where the exception is named).
TRACE_CHARS: Final = 8_000
#: Length of the hash in a fingerprint id (hex digits: 64 bits).
DIGEST_CHARS: Final = 16

EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
UUID: Final = re.compile(
    r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE
)
DECIMAL: Final = re.compile(r"\b\d+(?:\.\d+)+\b")
#: A word holding a digit: an id, a number, a number with a unit, a name with a number
#: (possessive, so a word without a digit fails without backtracking).
WORD_WITH_DIGIT: Final = re.compile(r"\b[^\W\d]*+\d\w*+")
DIGITS: Final = re.compile(r"\d+")
DIGIT: Final = re.compile(r"\d")
HEX: Final = re.compile(r"[0-9a-f]+", re.IGNORECASE)
#: An exception's name as tracebacks and failure reasons print it: a dotted path
#: ending in a capitalised name (``ValueError``, ``ils.errors.PermanentJobError``).
EXCEPTION_LINE: Final = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s|:$|$)")
FINGERPRINT_ID: Final = re.compile(rf"^(?P<queue>.+)-(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}})$")


class FailureGroupNotFoundError(NotFoundError):
    """No failed job in scope has this fingerprint (or the id is not one): the API's
    404, the same for another company's group as for one that never existed."""

    def __init__(self) -> None:
        super().__init__("failure group")


# -- the fingerprint ------------------------------------------------------------------------


def _mask_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word.isdigit():
        return "<n>"
    runs = len(DIGITS.findall(word))
    letters = any(char.isalpha() for char in word)
    if runs > 1 or (len(word) >= 8 and HEX.fullmatch(word)) or (len(word) >= 16 and letters):
        # Letters and digits interleaved, a hex string, a long token: an identifier.
        return "<id>"
    # A number with a unit or a name with a number: ``1500ms``, ``attempt3``.
    return DIGITS.sub("<n>", word)


def mask_message(message: str) -> str:
    """``message`` with what differs between occurrences of one problem replaced:
    e-mail addresses by ``<email>``, uuids by ``<uuid>``, other identifiers by
    ``<id>``, numbers by ``<n>``; spaces folded, at most :data:`MESSAGE_CHARS`."""
    # The checks skip whole passes: most messages hold no address, many no digit,
    # and a page groups a thousand messages per queue.
    masked = EMAIL.sub("<email>", message) if "@" in message else message
    if DIGIT.search(masked):
        masked = UUID.sub("<uuid>", masked)
        masked = DECIMAL.sub("<n>", masked) if "." in masked else masked
        masked = WORD_WITH_DIGIT.sub(_mask_word, masked)
    masked = " ".join(masked.split())
    return masked if len(masked) <= MESSAGE_CHARS else masked[: MESSAGE_CHARS - 1] + "…"


def newest_trace(job: JobRecord) -> str | None:
    """The stack trace of the job's last attempt (stores append one per attempt)."""
    return job.stacktrace[-1] if job.stacktrace else None


def exception_type(reason: str | None, trace: str | None) -> str:
    """The exception's name: from the trace when there is one (a Python traceback
    names it on its last line, a Node stack on its first), else from a reason of the
    form ``Type: message``; ``""`` when neither names one (a stalled job)."""
    if trace:
        lines = [line for line in trace.splitlines() if line.strip()]
        if lines and lines[0].startswith("Traceback"):
            candidates = [line for line in reversed(lines) if not line[0].isspace()]
        else:
            candidates = lines[:1]
        for line in candidates:
            found = EXCEPTION_LINE.match(line)
            if found:
                return found.group(1)
    found = EXCEPTION_LINE.match(reason or "")
    return found.group(1) if found else ""


def _message(reason: str | None, kind: str) -> str:
    """The reason without the ``Type: `` the consumer puts before foreign errors."""
    text = (reason or "").strip()
    for prefix in {kind, kind.rpartition(".")[2]} - {""}:
        if text == prefix:
            return ""
        if text.startswith(prefix + ":"):
            return text[len(prefix) + 1 :].strip()
    return text


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What makes two failures the same problem."""

    queue: str
    name: str
    exception_type: str
    message: str

    @property
    def id(self) -> str:
        """``<queue>-<16 hex digits>``: the queue in clear, so an action reads only
        that queue's failed jobs; the hash covers all four parts."""
        parts = "\0".join((self.queue, self.name, self.exception_type, self.message))
        digest = hashlib.sha256(parts.encode()).hexdigest()[:DIGEST_CHARS]
        return f"{self.queue}-{digest}"


def fingerprint(job: JobRecord) -> Fingerprint:
    """The fingerprint of a failed job."""
    kind = exception_type(job.failed_reason, newest_trace(job))
    return Fingerprint(job.queue, job.name, kind, mask_message(_message(job.failed_reason, kind)))


def queue_of(fingerprint_id: str) -> str | None:
    """The queue a fingerprint id names; ``None`` when it is not a fingerprint id."""
    found = FINGERPRINT_ID.match(fingerprint_id)
    return found.group("queue") if found else None


# -- groups ---------------------------------------------------------------------------------


@dataclass(slots=True)
class FailureGroup:
    """Failed jobs of one fingerprint among those read. Times are epoch ms (finish
    times); the sample is the newest job of the group, with its last attempt's trace."""

    fingerprint: str
    queue: str
    name: str
    exception_type: str
    message: str
    count: int
    first_seen_ms: int
    last_seen_ms: int
    sample_job_id: str
    sample_stacktrace: str | None


@dataclass(frozen=True, slots=True)
class FailureReport:
    """The groups, largest first, and what they were built from.

    ``failed``: failed jobs in scope in the queues asked for; ``scanned``: how many of
    them were read (at most ``per_queue`` per queue); ``truncated_queues``: the queues
    whose older failed jobs were left unread, so their groups count the newest only.
    """

    groups: list[FailureGroup]
    per_queue: int
    scanned: int
    failed: int
    truncated_queues: list[str]

    @property
    def truncated(self) -> bool:
        """Whether some failed jobs were left unread."""
        return bool(self.truncated_queues)


def _seen(job: JobRecord) -> int:
    return job.finished_at_ms or job.processed_at_ms or job.created_at_ms


def _cut(trace: str | None) -> str | None:
    if trace is None or len(trace) <= TRACE_CHARS:
        return trace
    return "…" + trace[-(TRACE_CHARS - 1) :]


def group_jobs(jobs: Iterable[JobRecord]) -> list[FailureGroup]:
    """Failed jobs grouped by fingerprint, largest group first (then the most recent).

    The sample is the newest job of each group: ``jobs`` may come in any order."""
    groups: dict[str, FailureGroup] = {}
    for job in jobs:
        print_ = fingerprint(job)
        seen = _seen(job)
        group = groups.get(print_.id)
        if group is None:
            groups[print_.id] = FailureGroup(
                print_.id, job.queue, job.name, print_.exception_type, print_.message,
                1, seen, seen, job.id, _cut(newest_trace(job)),
            )  # fmt: skip
            continue
        group.count += 1
        group.first_seen_ms = min(group.first_seen_ms, seen)
        if seen > group.last_seen_ms:
            group.last_seen_ms = seen
            group.sample_job_id = job.id
            group.sample_stacktrace = _cut(newest_trace(job))
    return sorted(groups.values(), key=lambda g: (g.count, g.last_seen_ms), reverse=True)


async def group_failures(
    admin: JobAdmin, queues: Iterable[str], *, per_queue: int = RECENT_PER_QUEUE
) -> FailureReport:
    """The failure groups of ``queues`` as ``admin`` sees them (scope it first with
    ``admin.for_company``), from the newest ``per_queue`` failed jobs of each queue.

    This is what ``GET /api/queue/failures`` and the dashboard's ``/admin/failures``
    answer with, and what a benchmark of them times without HTTP::

        await group_failures(system.admin, system.catalogue)
    """
    jobs: list[JobRecord] = []
    failed = 0
    truncated: list[str] = []
    for queue in queues:
        found = await admin.list_jobs(queue, JobState.FAILED, offset=0, limit=per_queue)
        jobs += found.jobs
        failed += found.total
        if found.truncated or found.total > len(found.jobs):
            truncated.append(queue)
    return FailureReport(group_jobs(jobs), per_queue, len(jobs), failed, truncated)


# -- acting on a group ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionBounds:
    """How much one group action may do: what it costs is bounded whatever the store
    holds (on SQLite the request holds the database's write lock until it is done)."""

    #: Jobs acted on between two yields to the event loop.
    batch_size: int = BATCH_SIZE
    #: Failed jobs of the queue looked at to gather the group, newest first.
    scan_limit: int = ACTION_SCAN_LIMIT
    #: Jobs acted on at most; the rest of a larger group waits for the next action.
    max_jobs: int = ACTION_MAX_JOBS


@dataclass(frozen=True, slots=True)
class GroupActionResult:
    """What a group action did.

    ``done``: the jobs retried or removed; ``missing``: members found in the scan that
    could not be acted on (gone, retried or running meanwhile); ``truncated``: members
    may remain (the scan stopped at its limit, or the action at ``max_jobs``): the same
    action again takes the next ones.
    """

    fingerprint: Fingerprint
    action: JobAction
    done: list[str]
    missing: list[str]
    truncated: bool


async def group_members(
    admin: JobAdmin, fingerprint_id: str, bounds: ActionBounds = ActionBounds()
) -> tuple[Fingerprint | None, list[str], bool]:
    """The fingerprint, the ids of the failed jobs in scope that have it (newest
    first, ``bounds.max_jobs`` at most) and whether more may remain; ``(None, [],
    False)`` when none has it."""
    queue = queue_of(fingerprint_id)
    if queue is None:
        return None, [], False
    found: Fingerprint | None = None
    ids: dict[str, None] = {}
    looked = 0
    while looked < bounds.scan_limit:
        size = min(SCAN_PAGE, bounds.scan_limit - looked)
        page = (await admin.list_jobs(queue, JobState.FAILED, offset=looked, limit=size)).jobs
        for job in page:
            print_ = fingerprint(job)
            if print_.id != fingerprint_id:
                continue
            if len(ids) == bounds.max_jobs:
                return found, list(ids), True
            found = print_
            ids[job.id] = None
        looked += size
        if len(page) < size:
            return found, list(ids), False
    return found, list(ids), True


async def _still_member(admin: JobAdmin, queue: str, job_id: str, fingerprint_id: str) -> bool:
    """Whether the job is still a failed member of the group: between the scan and the
    action another admin may have retried it (removing it now would delete a job
    waiting to run) or it may have failed again for another reason."""
    job = await admin.find(queue, job_id)
    return (
        job is not None and job.state is JobState.FAILED and fingerprint(job).id == fingerprint_id
    )


async def _act_on_group(
    action: JobAction,
    admin: JobAdmin,
    fingerprint_id: str,
    queues: Collection[str],
    bounds: ActionBounds,
) -> GroupActionResult:
    queue = queue_of(fingerprint_id)
    if queue is None or queue not in queues:
        raise FailureGroupNotFoundError
    found, ids, truncated = await group_members(admin, fingerprint_id, bounds)
    if found is None:
        raise FailureGroupNotFoundError
    done: list[str] = []
    missing: list[str] = []
    for start in range(0, len(ids), bounds.batch_size):
        for job_id in ids[start : start + bounds.batch_size]:
            # A store retries only a failed job, so a retry needs no second look; a
            # removal would delete a job in any state but active.
            if action is JobAction.REMOVE and not await _still_member(
                admin, queue, job_id, fingerprint_id
            ):
                missing.append(job_id)
                continue
            try:
                await admin.act(action, queue, job_id)
            except (JobNotFoundError, InvalidJobStateError):
                missing.append(job_id)
                continue
            done.append(job_id)
        # Let the rest of the process (requests, workers, the relay) run between batches.
        await asyncio.sleep(0)
    return GroupActionResult(found, action, done, missing, truncated)


async def retry_group(
    admin: JobAdmin,
    fingerprint_id: str,
    queues: Collection[str],
    bounds: ActionBounds = ActionBounds(),
) -> GroupActionResult:
    """Send the failed jobs of the group in ``admin``'s scope back to waiting, newest
    first, ``bounds.max_jobs`` at most (``truncated`` says when some remain).

    ``queues``: the queues that exist (the catalogue); a fingerprint naming another is
    not found. Raises :class:`FailureGroupNotFoundError` when no failed job in scope
    has the fingerprint.
    """
    return await _act_on_group(JobAction.RETRY, admin, fingerprint_id, queues, bounds)


async def remove_group(
    admin: JobAdmin,
    fingerprint_id: str,
    queues: Collection[str],
    bounds: ActionBounds = ActionBounds(),
) -> GroupActionResult:
    """Delete the failed jobs of the group in ``admin``'s scope (as
    :func:`retry_group`); each is read again first and left alone unless it is still
    a failed job of the group."""
    return await _act_on_group(JobAction.REMOVE, admin, fingerprint_id, queues, bounds)
