"""Finding and operating on jobs for the monitoring API, scoped and audited.

Scope: a ``platform_admin`` sees every job; an ``admin`` or ``company_admin`` sees
the jobs made for their company (``JobRecord.company_id``, stamped when a request of
that company queued them) and nothing else: another company's job answers 404 as
an unknown one does. Jobs of both stores are shown (Redis, and the local store that
holds what was queued while Redis was down).

Company lists and searches are the stores' own (``list_company_jobs``,
``search_jobs``): the local store answers from SQL over the whole queue; the Redis
store, which has no index by company or text, scans at most :data:`SCAN_LIMIT` jobs
(more than the retention defaults keep: 1,000 completed, 5,000 failed per queue)
and the answer says when it stopped early.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.audit import AuditEntry
from ils.domain.companies import Role, User
from ils.queue.model import JobRecord, JobState
from ils.queue.store import JobStore
from ils.queue.system import JobSystem

#: Jobs looked at per store when a search or a company filter applies.
SCAN_LIMIT: Final = 10_000
#: Roles that see and operate on every company's jobs.
PLATFORM_ROLES: Final = frozenset({Role.PLATFORM_ADMIN})


def sees_all(user: User) -> bool:
    """Whether ``user`` sees every company's jobs."""
    return user.role in PLATFORM_ROLES


def visible(user: User, job: JobRecord) -> bool:
    """Whether ``user`` may see and act on ``job``."""
    return sees_all(user) or (job.company_id is not None and job.company_id == user.company_id)


def newest_first(job: JobRecord) -> tuple[int, int, str]:
    """The stores' order: finished jobs by finish time, the others by creation time."""
    return (job.finished_at_ms or 0, job.created_at_ms, job.id)


@dataclass(frozen=True, slots=True)
class Found:
    """One page of jobs, the total matching and whether a scan stopped early."""

    jobs: list[JobRecord]
    total: int
    truncated: bool


#: A page of jobs, how many match, and whether a scan stopped early.
Paged = tuple[list[JobRecord], int, bool]
#: Asks one store for ``(offset, limit)`` of the jobs a request wants.
Fetch = Callable[[JobStore, int, int], Awaitable[Paged]]


async def find_jobs(
    system: JobSystem,
    queue: str,
    state: JobState,
    user: User,
    *,
    text: str | None,
    offset: int,
    limit: int,
) -> Found:
    """A page of the jobs ``user`` may see in ``state``, newest first."""
    stores = system.reachable_stores()
    if text:
        company = None if sees_all(user) else user.company_id

        async def searched(store: JobStore, start: int, size: int) -> Paged:
            return await store.search_jobs(
                queue, state, text, company_id=company, offset=start, limit=size
            )

        return await _merged(stores, searched, offset, limit)
    if sees_all(user):

        async def listed(store: JobStore, start: int, size: int) -> Paged:
            total = (await store.counts(queue))[state]
            page = await store.list_jobs(queue, state, offset=start, limit=size) if size else []
            return page, total, False

        return await _one_or_merged(stores, listed, offset, limit)

    async def company_listed(store: JobStore, start: int, size: int) -> Paged:
        return await store.list_company_jobs(
            queue, state, user.company_id, offset=start, limit=size
        )

    return await _one_or_merged(stores, company_listed, offset, limit)


async def _one_or_merged(stores: list[JobStore], fetch: Fetch, offset: int, limit: int) -> Found:
    """Usually one store holds the jobs (the local store only holds what was queued
    while Redis was down): count in each (``limit`` 0), then page that one directly;
    otherwise merge the heads of both."""
    counted = [(store, *(await fetch(store, 0, 0))[1:]) for store in stores]
    holding = [store for store, count, _ in counted if count]
    if len(holding) > 1:
        return await _merged(holding, fetch, offset, limit)
    page = (await fetch(holding[0], offset, limit))[0] if holding else []
    total = sum(count for _, count, _ in counted)
    return Found(page, total, any(cut for _, _, cut in counted))


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


async def find_job(system: JobSystem, queue: str, job_id: str, user: User) -> JobRecord | None:
    """The job ``user`` may see, from whichever store holds it."""
    for store in system.reachable_stores():
        job = await store.get_job(queue, job_id)
        if job is not None:
            return job if visible(user, job) else None
    return None


def store_of(system: JobSystem, job: JobRecord) -> JobStore:
    """The store that holds ``job``."""
    for store in system.stores():
        if store.kind == job.store:
            return store
    raise LookupError(job.store)


def audit(
    session: AsyncSession,
    request: Request,
    user: User,
    now: datetime,
    action: str,
    queue: str,
    job_id: str | None = None,
    **detail: Any,
) -> None:
    """Record one operation in the request's transaction."""
    client = request.client.host if request.client else None
    agent = request.headers.get("user-agent")
    session.add(
        AuditEntry(
            at=now,
            user_id=user.id,
            user_email=user.email,
            company_id=user.company_id,
            action=action,
            queue=queue,
            job_id=job_id,
            detail=detail,
            ip=client,
            user_agent=agent[:300] if agent else None,
        )
    )


async def visible_jobs_in(
    system: JobSystem, queue: str, state: JobState, user: User
) -> Sequence[JobRecord]:
    """Every job in ``state`` that ``user`` may act on (bulk operations of a company)."""
    return (await find_jobs(system, queue, state, user, text=None, offset=0, limit=SCAN_LIMIT)).jobs
