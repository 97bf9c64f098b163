"""Handlers for fault-injection worker processes (``ils worker --handlers`` this ``:register``).

``register`` replaces the ``general-notification`` e-mail handler (``ils worker``
registers the built-in ones first, hence ``replace``) with one that sends nothing and
appends ``<claim epoch ms> <job id> <store> <pid>`` to the file in
``ILS_TEST_STARTS``: the rate-limit scenario counts starts per window across both stores
and every process from it. The time is the store's claim time (when the limiter let the
job through), not the handler's: a busy process may start a claimed job's handler
later, which says nothing about the limiter.
"""

from __future__ import annotations

import os
import time

from ils.jobs.payloads.email import GeneralNotificationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.worker_context import WorkerContext


async def record_start(payload: GeneralNotificationEmail, ctx: JobContext) -> dict[str, str]:
    claimed = getattr(ctx, "claimed", None)
    at = claimed.record.processed_at_ms if claimed is not None else None
    at = at or time.time_ns() // 1_000_000
    window = claimed.rate_window_ms if claimed is not None else None
    line = f"{at} {ctx.job_id} {getattr(ctx, 'store', '?')} {os.getpid()} {window}\n"
    fd = os.open(os.environ["ILS_TEST_STARTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return {"recorded": payload.user_id}


def register(registry: HandlerRegistry, context: WorkerContext) -> None:
    del context
    registry.replace(GeneralNotificationEmail, record_start)
