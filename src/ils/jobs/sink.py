"""Where validated jobs go: the producer, or a fake in tests.

A protocol of its own so the helpers, the workers' context and the schedules depend
on what they call, not on the producer and its stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.jobs.fairness import Demand
from ils.jobs.model import JobOptions, JobRef


class JobSink(Protocol):
    """Queues validated jobs (``ils.jobs.producer.Producer``)."""

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
        """Queue one validated job and return where it went; ``demand``: a job a user
        triggered, held to its company's quota (``ils.jobs.fairness``)."""
        ...

    async def enqueue_many(
        self,
        queue: str,
        jobs: Sequence[tuple[str, BaseModel, JobOptions]],
        *,
        session: AsyncSession | None = None,
    ) -> list[JobRef]:
        """Queue many validated jobs of one queue at once (one round trip)."""
        ...
