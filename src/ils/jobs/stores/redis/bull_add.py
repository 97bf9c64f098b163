"""A BullMQ add as a command to send on the producers' pipe (``redis.pipe``).

``bullmq``'s ``Queue.add`` sends its script through redis-py and waits for the reply;
the pipe needs the command itself. It is made by ``bullmq``'s own ``addJob`` (which
script, which keys, the packed arguments), run against a recorder in place of the
client, so it stays exactly what the package would send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bullmq

from ils.jobs.stores.redis.bull import BullQueue

#: The scripts ``addJob`` chooses from (by delay and priority).
ADD_SCRIPTS = ("addStandardJob", "addDelayedJob", "addPrioritizedJob")


@dataclass(frozen=True, slots=True)
class AddCommand:
    """One add as a command to send, and how to read its reply."""

    command: tuple[Any, ...]
    parent_key: str | None
    errors: Any  # bullmq's ``Scripts.finishedErrors``

    def job_id(self, reply: Any) -> str:
        """The job id the script answered; a negative code raises as ``addJob`` does."""
        if isinstance(reply, int) and reply < 0:
            raise self.errors({"code": reply, "parentKey": self.parent_key, "command": "addJob"})
        return str(reply)


class _EvalRecorder:
    """A stand-in client that records the one ``EVALSHA`` it is asked to run."""

    command: tuple[Any, ...] | None = None

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> str:
        self.command = ("EVALSHA", sha, numkeys, *keys_and_args)
        return ""  # not an int: ``addJob`` takes it for a job id and returns


def add_command(
    bull: BullQueue, name: str, data: Mapping[str, Any], opts: dict[str, Any]
) -> AddCommand:
    """The command of ``Queue.add(name, data, opts)`` on ``bull``'s queue.

    The recorder answers at once, so ``addJob`` ends without ever suspending: it is
    stepped once, synchronously. Should a later ``bullmq`` wait on anything else, this
    fails loudly instead of sending something half made.
    """
    queue = bull.queue
    job = bullmq.Job(queue, name, dict(data), {**queue.jobsOpts, **opts})
    recorder = _EvalRecorder()
    step = bull.scripts.addJob(job, recorder)
    try:
        step.send(None)
    except StopIteration:
        pass
    else:
        step.close()
        raise RuntimeError("bullmq's addJob waited on something other than its script")
    assert recorder.command is not None
    return AddCommand(recorder.command, job.parentKey, bull.scripts.finishedErrors)


def add_scripts(bull: BullQueue) -> list[tuple[str, str, str]]:
    """``SCRIPT LOAD`` of every script :func:`add_command` may name by SHA: sent first
    on each new pipe connection, so an ``EVALSHA`` finds its script."""
    return [("SCRIPT", "LOAD", bull.scripts.commands[name].script) for name in ADD_SCRIPTS]
