"""Handlers for tests that run real worker processes (``ils worker --handlers ...``).

Their behaviour is set by environment variables, since they run in another process:

- ``ILS_TEST_RECORD``: a file; every start and end of a job appends a line
  ``<epoch seconds> <job id> <pid> <attempt> start|done``.
- ``ILS_TEST_SLEEP_S``: how long each job takes (default 0).
- ``ILS_TEST_FAIL``: ``always`` makes every job fail (a retryable error).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ils.errors import JobFailedError
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.worker_context import WorkerContext


def _record(ctx: JobContext, event: str) -> None:
    path = os.environ.get("ILS_TEST_RECORD")
    if not path:
        return
    line = f"{time.time():.6f} {ctx.job_id} {os.getpid()} {ctx.attempt} {event}\n"
    # One small O_APPEND write per line: lines from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def recording_handler(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Record the start, take ILS_TEST_SLEEP_S, fail if asked, record the end."""
    _record(ctx, "start")
    delay = float(os.environ.get("ILS_TEST_SLEEP_S", "0"))
    if delay:
        await asyncio.sleep(delay)
    if os.environ.get("ILS_TEST_FAIL") == "always":
        _record(ctx, "fail")
        raise JobFailedError("told to fail")
    _record(ctx, "done")
    return {"pid": os.getpid(), "type": type(payload).__name__}


def register(registry: HandlerRegistry, context: WorkerContext) -> None:
    """Register the recording handler for every job type, in place of the built-in
    handlers ``ils worker`` registered first."""
    del context
    for job_type in registry.job_types:
        registry.replace(job_type.model, recording_handler)
