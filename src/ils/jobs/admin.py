"""Finding and operating on jobs over every store the system can reach, scoped.

In Redis mode jobs live in two stores: Redis, and the local store that holds what was
queued while Redis was down. Listing, finding and acting on jobs therefore fans out
over both; :class:`JobAdmin` is the one place that does it, for the monitoring API,
the dashboard, the CLI and ``JobSystem`` alike.

Scope: an admin made for every company (a platform_admin, the CLI) sees and acts on
every job; one made for a company (:meth:`JobAdmin.for_company`) sees only the jobs
stamped with that company's id, and another company's job, or one stamped with no
company, is reported exactly as a job that does not exist. Pausing and resuming stop
a queue for everyone, so only an every-company admin may.

Company lists and searches are the stores' own (``list_company_jobs``,
``search_jobs``): the local store answers from SQL over the whole queue; the Redis
store, which has no index by company or text, scans at most :data:`SCAN_LIMIT` jobs
and the answer says when it stopped early.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.errors import InvalidJobStateError, JobNotFoundError
from ils.jobs.model import COUNTED_STATES, JobRecord, JobState
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore

T = TypeVar("T")

#: Jobs looked at per store when a search or a company filter applies (more than the
#: retention defaults keep: 1,000 completed, 5,000 failed per queue).
SCAN_LIMIT: Final = 10_000


class JobAction(StrEnum):
    """What can be done to one job (the audit log's action names)."""

    RETRY = "retry"
    REMOVE = "remove"
    PROMOTE = "promote"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose jobs an admin sees: one company's, or every company's (``None``)."""

    company_id: str | None = None

    @property
    def everyone(self) -> bool:
        """Whether every company's jobs are in scope."""
        return self.company_id is None

    def allows(self, job: JobRecord) -> bool:
        """A job stamped with no company belongs to the platform, not to a company."""
        return self.company_id is None or job.company_id == self.company_id


@dataclass(frozen=True, slots=True)
class Found:
    """One page of jobs, the total matching and whether a scan stopped early."""

    jobs: list[JobRecord]
    total: int
    truncated: bool


@dataclass(slots=True)
class BulkResult:
    """Ids done, and the ids left alone with the error that stopped each."""

    done: list[str] = field(default_factory=list)
    skipped: dict[str, JobNotFoundError | InvalidJobStateError] = field(default_factory=dict)


class StoreSource(Protocol):
    """Where the stores come from (``JobStores``): asked at each call, because which
    stores are reachable changes while Redis goes down and comes back."""

    def stores(self) -> list[JobStore]: ...

    def reachable_stores(self) -> list[JobStore]: ...


#: A page of jobs, how many match, and whether a scan stopped early.
Paged = tuple[list[JobRecord], int, bool]
#: Asks one store for ``(offset, limit)`` of the jobs a caller wants.
Fetch = Callable[[JobStore, int, int], Awaitable[Paged]]


def newest_first(job: JobRecord) -> tuple[int, int, str]:
    """The stores' order: finished jobs by finish time, the others by creation time."""
    return (job.finished_at_ms or 0, job.created_at_ms, job.id)


async def _apply(action: JobAction, store: JobStore, queue: str, job_id: str) -> None:
    """Do ``action`` to a job in the store that holds it (the store checks its state)."""
    if action is JobAction.RETRY:
        await store.retry_job(queue, job_id)
    elif action is JobAction.REMOVE:
        await store.remove_job(queue, job_id)
    else:
        await store.promote(queue, job_id)


class JobAdmin:
    """List, search, find, retry, remove, promote, clean, pause and resume jobs.

    Immutable: :meth:`for_company` and :meth:`within` return new admins, so one
    request's scope or transaction never leaks into another's.
    """

    def __init__(self, source: StoreSource, clock: Clock, scope: Scope | None = None) -> None:
        self._source = source
        self._clock = clock
        self.scope = scope or Scope()

    def for_company(self, company_id: str | None) -> JobAdmin:
        """This admin limited to one company's jobs (``None``: every company's)."""
        return JobAdmin(self._source, self._clock, Scope(company_id))

    def within(self, session: AsyncSession) -> JobAdmin:
        """This admin with the local store working inside ``session``'s transaction.

        Why: on SQLite a web request that writes holds the database's one write lock
        from its first statement to its commit, so the local store's own transactions
        would wait for it until they time out; the router used to commit the request
        in its middle to let them through, and the audit entry then landed in a second
        transaction. Here the local store's reads and changes run on the session's
        connection instead (each in a savepoint, so a refused operation leaves
        nothing), and commit or roll back with whatever else the request wrote, the
        audit entry included. Workers of this process are woken after the commit.
        Redis operations cannot join a SQL transaction: they take effect at once. The
        session must be on the app database that holds the local store's tables.
        """
        return JobAdmin(_InTransaction(self._source, session), self._clock, self.scope)

    # -- reading -----------------------------------------------------------------------

    async def counts(self, queue: str) -> dict[JobState, int]:
        """A queue's jobs in scope by state, summed over the reachable stores (for one
        company, Redis counts what a scan of :data:`SCAN_LIMIT` jobs per state finds)."""
        totals = dict.fromkeys(COUNTED_STATES, 0)
        for store in self._source.reachable_stores():
            if self.scope.company_id is None:
                for state, value in (await store.counts(queue)).items():
                    totals[state] += value
                continue
            for state in COUNTED_STATES:
                page = await store.list_company_jobs(queue, state, self.scope.company_id, limit=0)
                totals[state] += page[1]
        return totals

    async def list_jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> Found:
        """A page of the jobs in scope in ``state``, newest first."""
        company = self.scope.company_id
        if company is None:

            async def listed(store: JobStore, start: int, size: int) -> Paged:
                total = (await store.counts(queue))[state]
                page = await store.list_jobs(queue, state, offset=start, limit=size) if size else []
                return page, total, False

            return await self._one_or_merged(listed, offset, limit)

        async def company_listed(store: JobStore, start: int, size: int) -> Paged:
            return await store.list_company_jobs(queue, state, company, offset=start, limit=size)

        return await self._one_or_merged(company_listed, offset, limit)

    async def search_jobs(
        self, queue: str, state: JobState, text: str, *, offset: int = 0, limit: int = 50
    ) -> Found:
        """A page of the jobs in scope in ``state`` whose name, id or payload contains
        ``text`` (any case), newest first."""

        async def searched(store: JobStore, start: int, size: int) -> Paged:
            return await store.search_jobs(
                queue, state, text, company_id=self.scope.company_id, offset=start, limit=size
            )

        return await self._merged(self._source.reachable_stores(), searched, offset, limit)

    async def find(self, queue: str, job_id: str) -> JobRecord | None:
        """The job, from whichever store holds it; ``None`` when out of scope."""
        for store in self._source.reachable_stores():
            job = await store.get_job(queue, job_id)
            if job is not None:
                return job if self.scope.allows(job) else None
        return None

    async def get(self, queue: str, job_id: str) -> JobRecord:
        """The job in full; ``JobNotFoundError`` when unknown or out of scope."""
        job = await self.find(queue, job_id)
        if job is None:
            raise JobNotFoundError(queue, job_id)
        return job

    # -- one job -----------------------------------------------------------------------

    async def retry(self, queue: str, job_id: str) -> JobRecord:
        """Send a failed job back to waiting; the job as it was before."""
        return await self.act(JobAction.RETRY, queue, job_id)

    async def remove(self, queue: str, job_id: str) -> JobRecord:
        """Delete a job that is not running; the job as it was before."""
        return await self.act(JobAction.REMOVE, queue, job_id)

    async def promote(self, queue: str, job_id: str) -> JobRecord:
        """Make a delayed job waiting now; the job as it was before."""
        return await self.act(JobAction.PROMOTE, queue, job_id)

    async def act(self, action: JobAction, queue: str, job_id: str) -> JobRecord:
        """Do ``action`` to one job in scope, in the store that holds it.

        Raises:
            JobNotFoundError: unknown, out of scope, or gone meanwhile.
            InvalidJobStateError: the job's state does not allow it; its ``state`` is
                the one the job was found in, so the refusal names what the caller saw.
        """
        job = await self.get(queue, job_id)
        try:
            await _apply(action, self._store_of(job), job.queue, job.id)
        except InvalidJobStateError:
            raise InvalidJobStateError(job.queue, job.id, job.state.value, action.value) from None
        return job

    async def bulk(self, action: JobAction, queue: str, job_ids: Sequence[str]) -> BulkResult:
        """Each job on its own: one that cannot be done is skipped with its error."""
        result = BulkResult()
        for job_id in dict.fromkeys(job_ids):
            try:
                await self.act(action, queue, job_id)
            except (JobNotFoundError, InvalidJobStateError) as exc:
                result.skipped[job_id] = exc
                continue
            result.done.append(job_id)
        return result

    # -- many jobs ---------------------------------------------------------------------

    async def retry_failed(self, queue: str) -> int:
        """Every failed job in scope back to waiting; how many."""
        if self.scope.everyone:
            stores = self._source.reachable_stores()
            return sum([await store.retry_failed(queue) for store in stores])
        return await self._each(JobAction.RETRY, queue, await self._every(queue, JobState.FAILED))

    async def clean(
        self, queue: str, state: JobState, *, older_than_ms: int = 0, limit: int = 0
    ) -> int:
        """Delete the jobs in scope in ``state`` older than the grace; how many.

        Every company's: each store cleans (``limit`` applies per store, 0 is none).
        One company's: its jobs are removed one by one, ``limit`` in all.
        """
        if self.scope.everyone:
            stores = self._source.reachable_stores()
            return sum(
                [
                    await store.clean(queue, state, older_than_ms=older_than_ms, limit=limit)
                    for store in stores
                ]
            )
        cutoff = self._clock.now_ms() - older_than_ms
        jobs = await self._every(queue, state)
        old = [job for job in jobs if (job.finished_at_ms or job.created_at_ms) <= cutoff]
        return await self._each(JobAction.REMOVE, queue, old, limit)

    async def pause(self, queue: str) -> None:
        """No new jobs of ``queue`` start, in any store, until it is resumed."""
        self._require_everyone("pause")
        for store in self._source.reachable_stores():
            await store.pause(queue)

    async def resume(self, queue: str) -> None:
        """Jobs of ``queue`` start again in every store."""
        self._require_everyone("resume")
        for store in self._source.reachable_stores():
            await store.resume(queue)

    # -- fan-out -----------------------------------------------------------------------

    def _require_everyone(self, what: str) -> None:
        """A queue switch stops or starts every company's jobs."""
        if not self.scope.everyone:
            raise PermissionError(f"only an admin of every company may {what} a queue")

    async def _each(
        self, action: JobAction, queue: str, jobs: Sequence[JobRecord], limit: int = 0
    ) -> int:
        """``action`` on each of ``jobs`` (one company's, found by a scan) in its own
        store, at most ``limit`` (0 is no limit); a job gone or changed since the scan is
        skipped. How many were done."""
        count = 0
        for job in jobs:
            if limit and count >= limit:
                break
            try:
                await _apply(action, self._store_of(job), queue, job.id)
            except (JobNotFoundError, InvalidJobStateError):
                continue
            count += 1
        return count

    def _store_of(self, job: JobRecord) -> JobStore:
        for store in self._source.stores():
            if store.kind == job.store:
                return store
        raise LookupError(job.store)

    async def _every(self, queue: str, state: JobState) -> list[JobRecord]:
        """Every job in scope in ``state`` (up to the scan limit), for bulk operations."""
        return (await self.list_jobs(queue, state, offset=0, limit=SCAN_LIMIT)).jobs

    async def _one_or_merged(self, fetch: Fetch, offset: int, limit: int) -> Found:
        """Usually one store holds the jobs (the local store only holds what was queued
        while Redis was down): count in each (``limit`` 0), then page that one
        directly; otherwise merge the heads of both."""
        stores = self._source.reachable_stores()
        counted = [(store, *(await fetch(store, 0, 0))[1:]) for store in stores]
        holding = [store for store, count, _ in counted if count]
        if len(holding) > 1:
            return await self._merged(holding, fetch, offset, limit)
        page = (await fetch(holding[0], offset, limit))[0] if holding else []
        total = sum(count for _, count, _ in counted)
        return Found(page, total, any(cut for _, _, cut in counted))

    @staticmethod
    async def _merged(stores: list[JobStore], fetch: Fetch, offset: int, limit: int) -> Found:
        """Each store's first ``offset + limit`` jobs, merged newest first, then the page."""
        jobs: list[JobRecord] = []
        total = 0
        truncated = False
        for store in stores:
            page, count, cut = await fetch(store, 0, offset + limit)
            jobs += page
            total += count
            truncated = truncated or cut
        jobs.sort(key=newest_first, reverse=True)
        return Found(jobs[offset : offset + limit], total, truncated)


class _InTransaction:
    """The source's stores, the local store replaced by one working in ``session``."""

    def __init__(self, source: StoreSource, session: AsyncSession) -> None:
        self._source = source
        self._session = session
        self._bound: dict[int, LocalJobStore] = {}

    def stores(self) -> list[JobStore]:
        return [self._swap(store) for store in self._source.stores()]

    def reachable_stores(self) -> list[JobStore]:
        return [self._swap(store) for store in self._source.reachable_stores()]

    def _swap(self, store: JobStore) -> JobStore:
        if not isinstance(store, LocalJobStore):
            return store
        bound = self._bound.get(id(store))
        if bound is None:
            bound = self._bound[id(store)] = store.in_session(self._session)
        return bound
