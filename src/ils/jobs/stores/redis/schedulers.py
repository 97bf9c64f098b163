"""BullMQ job schedulers for the schedules table (Redis mode).

Each active schedule is a BullMQ job scheduler with the schedule's id, whose
template is the ``run-schedule`` tick: BullMQ keeps one delayed tick per scheduler
and, when a worker takes it, makes the next one. Our runner fetches with BullMQ's
scripts directly rather than through ``Worker``'s loop, so it advances the scheduler
itself when it claims a tick (:func:`advance`), as ``Worker.nextJobFromJobData`` does.

Cron times come from :mod:`ils.jobs.schedules.cron` (the repeat strategy given to BullMQ), so
daylight-saving changes are handled as in local mode; intervals are BullMQ's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from bullmq.job_scheduler import JobScheduler

from ils.jobs.schedules.cron import ScheduleSpec, next_run
from ils.jobs.stores.redis.codec import COMPANY_OPTION, decode_options

#: The tick every scheduler makes (jobs.md ``scheduled`` queue).
TICK_NAME: Final = "run-schedule"


def _at(ms: Any) -> datetime | None:
    if ms in (None, ""):
        return None
    if isinstance(ms, str) and not ms.isdigit():
        return datetime.fromisoformat(ms)
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def cron_strategy(millis: int, opts: dict[str, Any]) -> int | None:
    """BullMQ's ``repeat_strategy``: the next cron time after ``millis`` with our rules."""
    pattern = opts.get("pattern")
    if not pattern:
        return None
    spec = ScheduleSpec(
        cron=str(pattern),
        every_s=None,
        time_zone=str(opts.get("tz") or "UTC"),
        start=_at(opts.get("startDate")),
        end=_at(opts.get("endDate")),
    )
    found = next_run(spec, datetime.fromtimestamp(millis / 1000, UTC))
    return None if found is None else int(found.timestamp() * 1000)


def use_our_cron(queue: Any, worker: Any) -> None:
    """Give a BullMQ queue and worker schedulers that compute cron times our way.

    ``JobScheduler`` takes a repeat strategy, but ``Queue`` and ``Worker`` make theirs
    lazily behind a read-only property with the default one; bullmq 3.4.4 keeps it in
    ``_job_scheduler``, which is set here before first use (checked by the Redis
    schedule tests).
    """
    queue._job_scheduler = JobScheduler(queue, repeat_strategy=cron_strategy)
    worker._job_scheduler = JobScheduler(worker, repeat_strategy=cron_strategy)


def repeat_options(spec: ScheduleSpec) -> dict[str, Any]:
    """BullMQ's ``repeat`` options for a schedule spec."""
    options: dict[str, Any] = {}
    if spec.cron is not None:
        options["pattern"] = spec.cron
        options["tz"] = spec.time_zone
    else:
        options["every"] = int(spec.every_s or 0) * 1000
    if spec.start is not None:
        options["startDate"] = int(spec.start.timestamp() * 1000)
    if spec.end is not None:
        options["endDate"] = int(spec.end.timestamp() * 1000)
    return options


def tick_template(schedule_id: str, company_id: str | None) -> dict[str, Any]:
    """The scheduler's job template: the tick of ``schedule_id``."""
    opts: dict[str, Any] = {"priority": 1}
    if company_id is not None:
        opts[COMPANY_OPTION] = company_id
    return {
        "name": TICK_NAME,
        "data": {"type": TICK_NAME, "scheduleId": schedule_id, "manual": False},
        "opts": opts,
    }


def same_definition(record: dict[str, Any] | None, repeat: dict[str, Any]) -> bool:
    """Whether BullMQ's scheduler ``record`` already has these repeat options."""
    if not record:
        return False
    for key in ("pattern", "tz", "every", "startDate", "endDate"):
        have = record.get(key)
        want = repeat.get(key)
        if (have in (None, "") and want is None) or str(have) == str(want):
            continue
        return False
    return True


async def sync(queue: Any, wanted: Sequence[tuple[str, ScheduleSpec, str | None]]) -> int:
    """Make the queue's schedulers exactly ``wanted`` (id, spec, company); how many
    were added, changed or removed. Unchanged ones are left alone, so their next tick
    is not moved."""
    changed = 0
    ids = {schedule_id for schedule_id, _, _ in wanted}
    for schedule_id, spec, company_id in wanted:
        repeat = repeat_options(spec)
        if same_definition(await _record(queue, schedule_id), repeat):
            continue
        template = tick_template(schedule_id, company_id)
        await queue.upsertJobScheduler(
            schedule_id, repeat, template["name"], template["data"], template["opts"]
        )
        changed += 1
    for record in await queue.getJobSchedulers(0, -1, True):
        key = str(record.get("key") or record.get("id") or "")
        if key and key not in ids:
            await queue.removeJobScheduler(key)
            changed += 1
    return changed


async def _record(queue: Any, schedule_id: str) -> dict[str, Any] | None:
    """The scheduler's record, ``None`` when there is none (bullmq 3.4.4's
    ``getJobScheduler`` fails on a missing one instead of returning ``None``)."""
    if not await queue.isJobScheduler(schedule_id):
        return None
    record: dict[str, Any] | None = await queue.getJobScheduler(schedule_id)
    return record


async def advance(worker: Any, job_id: str, raw: dict[str, str]) -> None:
    """After claiming a scheduler's tick, make the scheduler's next one."""
    scheduler_id = raw.get("rjk")
    if not scheduler_id:
        return
    opts = decode_options(raw.get("opts"))
    data = json.loads(raw.get("data") or "{}")
    await worker.jobScheduler.upsertJobScheduler(
        scheduler_id,
        opts.get("repeat"),
        raw.get("name", TICK_NAME),
        data,
        opts,
        override=False,
        producer_id=job_id,
    )
