"""Payload models of the ``scheduled`` queue (Redis queue ``scheduled-jobs``).

``run-schedule`` is a schedule's tick: one per due time (made by BullMQ's job
scheduler in Redis mode, by the schedule claimers in local mode, or by "run now");
its handler enqueues the schedule's jobs. ``cleanup-expired-data`` is the nightly
clean-up the built-in platform schedule runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ils.jobs.payloads.base import Identifier, JobPayload


class RunSchedule(JobPayload):
    """Run a schedule's jobs for its newest due time (or now, when ``manual``)."""

    type: Literal["run-schedule"] = "run-schedule"
    schedule_id: Identifier
    manual: bool = False


class CleanupExpiredData(JobPayload):
    """Delete what has outlived its retention (old notifications, expired sessions,
    generated and uploaded files no record points at)."""

    type: Literal["cleanup-expired-data"] = "cleanup-expired-data"
    older_than_days: Annotated[int, Field(strict=True, ge=1, le=3650)] | None = None
