"""Ending tasks by cancelling them, when a cancel can be lost on the way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

#: How often a task still running after a cancel is cancelled again.
RECANCEL_S = 0.25


async def cancel_until_done(tasks: Sequence[asyncio.Task[None]], deadline: float) -> int:
    """Cancel ``tasks``, again every :data:`RECANCEL_S` while any runs, until
    ``deadline``; how many still run then.

    Why again: redis-py sends a new connection's first command under
    ``asyncio.wait_for``, which on Python 3.11 returns the command's reply instead of
    raising when the cancel arrives as the reply does. The cancel is lost and the task
    runs on: a worker stopped just after it started waited out the whole shutdown
    grace (30 s) for its stalled-job sweeper (``tests/jobs/test_consumer_stop.py``).
    """
    loop = asyncio.get_running_loop()
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: each task logs its own failures
    return len(pending)
