"""Bodies of the failure groups API (``/api/queue/failures``).

Times are ISO datetimes in UTC like the rest of the monitoring API; the report's
bound (``per_queue``) and whether it cut anything (``truncated``) are part of every
answer, so a client never takes the newest failures for all of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ils.jobs.failures import (
    ACTION_MAX_JOBS,
    ACTION_SCAN_LIMIT,
    TRACE_CHARS,
    FailureGroup,
    FailureReport,
    GroupActionResult,
)
from ils.web.schemas.common import OutputModel
from ils.web.schemas.times import utc_from_ms


class FailureGroupOut(OutputModel):
    """Failed jobs that failed the same way."""

    fingerprint: str = Field(description="The group's id: `<queue>-<16 hex digits>`.")
    queue: str
    name: str = Field(description="The job name.")
    exception_type: str = Field(description="`ValueError`, `ils.errors.PermanentJobError`…")
    message: str = Field(
        description="The failure reason with e-mail addresses, uuids, ids and numbers masked."
    )
    count: int = Field(description="Jobs of the group among the failed jobs read.")
    first_seen: datetime = Field(description="The oldest failure of the group read.")
    last_seen: datetime = Field(description="The newest failure of the group.")
    sample_job_id: str = Field(description="The group's newest job.")
    sample_stacktrace: str | None = Field(
        description=f"That job's last stack trace (its end, at most {TRACE_CHARS:,} "
        "characters); null unless you are a platform_admin."
    )

    @classmethod
    def of(cls, group: FailureGroup) -> FailureGroupOut:
        return cls.read_from(
            group,
            first_seen=utc_from_ms(group.first_seen_ms),
            last_seen=utc_from_ms(group.last_seen_ms),
        )


class FailureGroupsOut(OutputModel):
    """The groups, largest first, and what they were built from."""

    groups: list[FailureGroupOut]
    per_queue: int = Field(description="Newest failed jobs read per queue (and store).")
    scanned: int = Field(description="Failed jobs read.")
    failed: int = Field(description="Failed jobs you may see in the queues asked for.")
    truncated: bool = Field(
        description="Some failed jobs were not read: counts are of the newest ones only."
    )
    truncated_queues: list[str] = Field(
        description="The queues whose older failed jobs were not read."
    )

    @classmethod
    def of(cls, report: FailureReport) -> FailureGroupsOut:
        return cls.read_from(report, groups=[FailureGroupOut.of(group) for group in report.groups])


class GroupActionOut(BaseModel):
    """What retrying or removing a group did."""

    fingerprint: str
    queue: str
    action: Literal["retry", "remove"]
    count: int = Field(description="Jobs retried or removed.")
    missing: int = Field(
        description="Jobs of the group that were gone, retried or running by the time "
        "they were reached, and were left alone."
    )
    truncated: bool = Field(
        description=f"Jobs of the group may remain: one action takes at most "
        f"{ACTION_MAX_JOBS:,} jobs, gathered from the newest {ACTION_SCAN_LIMIT:,} failed "
        "jobs of the queue. The same action again takes the next ones."
    )

    @classmethod
    def of(cls, fingerprint: str, result: GroupActionResult) -> GroupActionOut:
        return cls(
            fingerprint=fingerprint,
            queue=result.fingerprint.queue,
            action="retry" if result.action.value == "retry" else "remove",
            count=len(result.done),
            missing=len(result.missing),
            truncated=result.truncated,
        )
