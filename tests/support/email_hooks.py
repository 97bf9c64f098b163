"""The real e-mail handlers, wrapped for process tests (``--handlers`` this ``:register``).

After the real handler returns (the message is accepted and its row says ``sent``)
the wrapper appends ``<job id> <pid> <state of each message> sent`` to the file in
``ILS_TEST_RECORD`` and, with ``ILS_TEST_HANG_AFTER_SEND=1``, never returns: the test
then kills the process between the send and the job's completion.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ils.jobs.registry import Handler, HandlerRegistry, JobContext
from ils.jobs.worker_context import WorkerContext
from ils.workers.email import QUEUE


def _wrap(real: Handler[Any]) -> Handler[Any]:
    async def handler(payload: Any, ctx: JobContext) -> Any:
        result = await real(payload, ctx)
        states = ",".join(m["state"] for m in result["messages"])
        line = f"{ctx.job_id} {os.getpid()} {states} sent\n"
        fd = os.open(os.environ["ILS_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        if os.environ.get("ILS_TEST_HANG_AFTER_SEND") == "1":
            await asyncio.Event().wait()
        return result

    return handler


def register(registry: HandlerRegistry, context: WorkerContext) -> None:
    """Wrap the e-mail handlers ``ils.workers.register_all`` registered."""
    del context
    for job_type in registry.job_types.for_queue(QUEUE):
        registration = registry.lookup(job_type.queue, job_type.name)
        assert registration is not None, "register after ils.workers.register_all"
        registry.replace(job_type.model, _wrap(registration.handler))
