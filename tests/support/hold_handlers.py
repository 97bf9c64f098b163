"""Handlers that hold every job until the test lets go (``ils worker --handlers``
this ``:register``), for tests that look at a worker process while it runs a job.

It runs in another process, so the signal is a file: each job waits until the path in
``ILS_TEST_RELEASE`` exists, then completes.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.worker_context import WorkerContext

#: How often a held job looks for the release file.
POLL_S = 0.05


async def holding_handler(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Wait for the release file, then complete."""
    release = Path(os.environ["ILS_TEST_RELEASE"])
    while not await asyncio.to_thread(release.exists):
        await asyncio.sleep(POLL_S)
    return {"held": ctx.job_id}


def register(registry: HandlerRegistry, context: WorkerContext) -> None:
    """The holding handler for every job type, in place of the built-in handlers."""
    del context
    for job_type in registry.job_types:
        registry.replace(job_type.model, holding_handler)
