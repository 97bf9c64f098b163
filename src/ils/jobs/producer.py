"""Enqueue: validate, size-check, and hand a job to the right store without blocking.

Every job gets its id here, before any store sees it. The promise of the fallback:
Redis slow or gone never fails an enqueue, never loses a job, and never runs a job
twice. So an add to Redis ends one of three ways:

- Redis answered within ``redis_enqueue_timeout_ms`` (a bulk add: plus
  ``redis_enqueue_ms_per_job`` for each further job): the job is in Redis.
- The add certainly never reached Redis (the gate was already open, or the connection
  was refused): the job goes to the local store and runs there at once.
- Anything else (the budget ran out, the connection dropped after the command went
  out) is *ambiguous*: Redis may have the job. It is held in the outbox under its id
  and resolved into Redis only, by id, once Redis answers; the add in flight is not
  cancelled, and when it answers the hold is settled. It never runs from the local
  store, so it cannot run in both.

A timeout is not taken as an outage: the gate only suspects one and lets its probes
decide (see ``ils.jobs.gate``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, replace
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.errors import InvalidPayloadError, PayloadTooLargeError, StoreUnavailableError
from ils.fairness_settings import FairnessSettings
from ils.jobs.fairness import Demand, FairShare
from ils.jobs.fairness_load import StoreLoadCounter
from ils.jobs.gate import RedisGate
from ils.jobs.job_types import JobTypes
from ils.jobs.model import JobOptions, JobRef, NewJob, new_job_id
from ils.jobs.outbox import HELD, Outbox
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.redis.store import RedisJobStore

#: ``session.info`` key of the company a request acts for: jobs enqueued in that
#: session without an explicit ``company_id`` are stamped with it.
COMPANY_INFO_KEY = "ils_company_id"


# Identity equality, and no generated repr (it would print the stores' connections).
@dataclass(eq=False, repr=False)
class Producer:
    """The single way jobs enter the system (helpers, the outbox relay, the CLI)."""

    job_types: JobTypes
    local: LocalJobStore
    redis: RedisJobStore | None
    gate: RedisGate | None
    clock: Clock
    _: KW_ONLY
    max_payload_bytes: int
    redis_timeout_ms: int
    #: What a bulk add's budget grows by for each job (``redis_enqueue_ms_per_job``).
    redis_ms_per_job: float = 0.0
    fairness: InitVar[FairnessSettings | None] = None

    def __post_init__(self, fairness: FairnessSettings | None) -> None:
        self.outbox = Outbox(
            self.local.transactions,
            self.deliver_many,
            self.clock,
            resolve=None if self.redis is None else self.redis.add_once,
            can_resolve=lambda: self.gate is not None and self.gate.up,
        )
        #: Quotas and fair priorities of user-triggered jobs (``ils.jobs.fairness``).
        self.fair_share = FairShare(
            fairness or FairnessSettings(),
            StoreLoadCounter(self.local, self.redis, self.gate),
            self.clock,
        )

    def prepare(self, queue: str, name: str, payload: BaseModel, options: JobOptions) -> NewJob:
        """Check type, payload and options; the job as a store will receive it."""
        job_type = self.job_types.get(queue, name)
        if not isinstance(payload, job_type.model):
            raise InvalidPayloadError(queue, name, [f"payload: expected {job_type.model.__name__}"])
        if problems := options.problems():
            raise InvalidPayloadError(queue, name, problems)
        # Unset optional fields are left out, as the TypeScript producers do.
        data = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        size = len(json.dumps(data, separators=(",", ":")).encode())
        if size > self.max_payload_bytes:
            raise PayloadTooLargeError(queue, name, size, self.max_payload_bytes)
        if options.job_id is None:
            options = replace(options, job_id=new_job_id())
        return NewJob(name, data, options)

    async def enqueue(
        self,
        queue: str,
        name: str,
        payload: BaseModel,
        options: JobOptions,
        *,
        session: AsyncSession | None = None,
        demand: Demand | None = None,
    ) -> JobRef:
        """Queue a job. With ``session``, it is part of that transaction: written to the
        jobs table directly in local mode, or to the outbox and handed to Redis after
        commit in Redis mode. A rollback queues nothing either way.

        ``demand``: a user-triggered job of that class, held to its company's quota and
        given its fair priority (``ils.jobs.fairness``; ``QuotaExceededError``)."""
        job = self.prepare(queue, name, payload, _stamped(options, session))
        if demand is not None:
            job = replace(
                job, options=await self.fair_share.admit(queue, demand, job.options, session)
            )
        if session is not None and self.redis is None:
            # Local mode: the jobs table is in the same database as the caller's rows.
            await self.local.add_in_session(session, queue, [job])
            return _ref(queue, job, self.local.kind)
        if session is not None:
            return self.outbox.record(session, queue, job)
        return _ref(queue, job, await self.deliver(queue, job))

    async def enqueue_many(
        self,
        queue: str,
        jobs: Sequence[tuple[str, BaseModel, JobOptions]],
        *,
        session: AsyncSession | None = None,
    ) -> list[JobRef]:
        """Queue many jobs of one queue at once, for producers that make them together
        (a schedule's fan-out to every company, a batch of invoices): one round trip to
        Redis and one insert in the local store instead of one per job.

        Every job is checked before any is queued, so a bad one queues none. With
        ``session`` they are part of its transaction, as with :meth:`enqueue`. Jobs of
        a demand class (quotas, fair priorities) are queued one by one with
        :meth:`enqueue` instead: each one's admission depends on the one before.
        """
        prepared = [
            self.prepare(queue, name, payload, _stamped(options, session))
            for name, payload, options in jobs
        ]
        if not prepared:
            return []
        if session is not None and self.redis is None:
            await self.local.add_in_session(session, queue, prepared)
            return [_ref(queue, job, self.local.kind) for job in prepared]
        if session is not None:
            return [self.outbox.record(session, queue, job) for job in prepared]
        store = await self.deliver_many(queue, prepared)
        return [_ref(queue, job, store) for job in prepared]

    async def deliver_many(
        self, queue: str, jobs: Sequence[NewJob], in_outbox: bool = False
    ) -> str:
        """:meth:`deliver` for many jobs in one call: all in Redis, all in the local
        store, or all held (an ambiguous bulk add is resolved job by job, by id).

        ``in_outbox``: the jobs are outbox rows already (the relay's). Nobody waits on
        a relay, and its jobs are safe in the outbox whatever happens, so it waits for
        Redis's own answer (bounded by the client's command timeout), not the enqueue
        budget: under a busy event loop an add can look slower than 25 ms while Redis is
        well, and each relayed job past the budget cost a hold and a settlement (two
        more transactions a job) for nothing.
        """
        if self.redis is None or self.gate is None or not self.gate.up:
            await self.local.add_bulk(queue, jobs)
            return self.local.kind
        add = self.redis.start_add_bulk(queue, jobs)
        store = await self._settle(queue, jobs, add, in_outbox=in_outbox)
        if store is None:
            await self.local.add_bulk(queue, jobs)
            return self.local.kind
        return store

    async def deliver(self, queue: str, job: NewJob) -> str:
        """Add to Redis when it is up, else to the local store; returns the store kind,
        or ``HELD`` when the add's outcome is unknown (see the module docstring).

        No call waits more than :meth:`budget_s` on Redis.
        """
        # One piece with the bulk add: the same store calls with a batch of one.
        return await self.deliver_many(queue, [job])

    def budget_s(self, jobs: int) -> float:
        """How long an add of ``jobs`` jobs may wait on Redis before the producer
        suspects an outage: the one-job budget, plus a per-job allowance for the jobs
        after the first, since Redis's time grows with the batch."""
        return (self.redis_timeout_ms + self.redis_ms_per_job * (jobs - 1)) / 1000

    async def _settle(
        self, queue: str, jobs: Sequence[NewJob], add: asyncio.Future[Any], *, in_outbox: bool
    ) -> str | None:
        """The fate of an add to Redis in flight for ``jobs``, one piece for the single
        and the bulk add: Redis's kind when it answered within the budget; ``None`` when
        it certainly never reached Redis (the caller adds the jobs locally); else
        ``HELD``: each job is held in the outbox and settled by id once the add answers.
        """
        assert self.redis is not None
        assert self.gate is not None
        try:
            await _answer_within(add, None if in_outbox else self.budget_s(len(jobs)))
            return self.redis.kind
        except TimeoutError:
            self.gate.suspect_outage("an enqueue took longer than its budget")
        except StoreUnavailableError as exc:
            self.gate.report(exc)
            if exc.unsent:
                return None
        for job in jobs:
            assert job.options.job_id is not None
            await self.outbox.hold(queue, job, existing=in_outbox)
            self.outbox.settle_later(job.options.job_id, add)
        return HELD


async def _answer_within(add: asyncio.Future[Any], budget_s: float | None) -> Any:
    """``add``'s result once it answers; ``TimeoutError`` if it has not answered
    within ``budget_s`` (``None``: no bound). The add itself is never cancelled, not
    even when the caller is: cancelling would leave its fate unknown for certain.

    ``asyncio.wait_for(asyncio.shield(add))`` does the same with two more futures and
    callbacks, each a pass of the event loop, on every enqueue."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def release(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    add.add_done_callback(release)
    timer = None if budget_s is None else loop.call_later(budget_s, release)
    try:
        await waiter
    finally:
        add.remove_done_callback(release)
        if timer is not None:
            timer.cancel()
    if not add.done():
        raise TimeoutError
    return add.result()


def _stamped(options: JobOptions, session: AsyncSession | None) -> JobOptions:
    """``options`` with the company a request's session acts for, unless set."""
    if options.company_id is None and session is not None:
        company_id = session.info.get(COMPANY_INFO_KEY)
        if isinstance(company_id, str):
            return replace(options, company_id=company_id)
    return options


def _ref(queue: str, job: NewJob, store: str) -> JobRef:
    assert job.options.job_id is not None
    return JobRef(queue=queue, name=job.name, job_id=job.options.job_id, store=store)
