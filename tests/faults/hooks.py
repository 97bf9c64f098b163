"""Handlers for fault-injection worker processes (``ils worker --handlers`` this ``:register``).

``register`` replaces the ``general-notification`` e-mail handler with one that sends
nothing and appends ``<start epoch ms> <job id> <store> <pid>`` to the file in
``ILS_TEST_STARTS``: the rate-limit scenario counts starts per window across both stores
and every process from it.
"""

from __future__ import annotations

import os
import time

from ils.queue.jobtypes_email import GeneralNotificationEmail
from ils.queue.registry import HandlerRegistry, JobContext
from ils.queue.system import JobSystem


async def record_start(payload: GeneralNotificationEmail, ctx: JobContext) -> dict[str, str]:
    line = f"{time.time_ns() // 1_000_000} {ctx.job_id} {ctx.store} {os.getpid()}\n"
    fd = os.open(os.environ["ILS_TEST_STARTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return {"recorded": payload.user_id}


def register(registry: HandlerRegistry, system: JobSystem) -> None:
    del system
    registry.register("email", "general-notification", record_start)
