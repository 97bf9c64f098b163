"""BullMQ commands to send on the store's pipe (``redis.pipe``): an add, a fetch.

``bullmq`` sends its scripts through redis-py and waits for the reply; the pipe needs
the command itself. An add's is made by ``bullmq``'s own ``addJob`` (which script,
which keys, the packed arguments), run against a recorder in place of the client, so
it stays exactly what the package would send. ``moveToActive`` takes no client, so
its command is built here from the same parts ``Scripts.moveToActive`` uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bullmq
import msgpack
from bullmq.scripts import raw2NextJobData
from redis.exceptions import NoScriptError

from ils.errors import StoreUnavailableError
from ils.jobs.stores.redis.bull import BullQueue, NextJob, parse_next, unavailable_guard
from ils.jobs.stores.redis.pipe import CommandPipe

#: The scripts sent by SHA on the pipe: those ``addJob`` chooses from (by delay and
#: priority), and the fetch's.
PIPED_SCRIPTS = ("addStandardJob", "addDelayedJob", "addPrioritizedJob", "moveToActive")
#: ``moveToActive``'s keys, in the order of ``Scripts.moveToActive``.
MOVE_TO_ACTIVE_KEYS = (
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "paused",
    "meta",
    "pc",
    "marker",
)


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


def move_to_active_command(bull: BullQueue, token: str) -> tuple[Any, ...]:
    """``moveToActive`` of the next job for ``token``, with the queue's lock duration
    and limiter; its reply is read by :func:`next_job`."""
    scripts = bull.scripts
    keys = scripts.getKeys(list(MOVE_TO_ACTIVE_KEYS))
    opts = {
        "token": token,
        "lockDuration": bull.config.lock_duration_ms,
        "limiter": bull.worker.opts.get("limiter"),
    }
    packed = msgpack.packb(opts, use_bin_type=True)
    sha = scripts.commands["moveToActive"].sha
    # Dated as bullmq dates it (its processedOn, the lock's and the limiter's start).
    return ("EVALSHA", sha, len(keys), *keys, scripts.keys[""], round(time.time() * 1000), packed)


def next_job(reply: Any) -> NextJob:
    """The job (or the wait) a ``moveToActive`` reply hands over."""
    return parse_next(raw2NextJobData(reply))


def piped_scripts(bull: BullQueue) -> list[tuple[str, str, str]]:
    """``SCRIPT LOAD`` of every script sent by SHA on the pipe: sent first on each new
    pipe connection, so an ``EVALSHA`` finds its script."""
    return [("SCRIPT", "LOAD", bull.scripts.commands[name].script) for name in PIPED_SCRIPTS]


def checked_replies(pipe: CommandPipe, outcome: list[Any] | BaseException) -> list[Any]:
    """A pipe send's replies, or its failure as ``StoreUnavailableError`` (an error
    reply raises as itself, except those ``unavailable_guard`` maps)."""
    with unavailable_guard():
        if isinstance(outcome, BaseException):
            raise outcome
        for reply in outcome:
            if isinstance(reply, NoScriptError):
                # Scripts flushed under a live connection: a new one loads them. The
                # command did not run; an add is resolved by id like any uncertain one.
                pipe.reconnect()
                raise StoreUnavailableError("redis unavailable: its scripts were flushed")
            if isinstance(reply, BaseException):
                raise reply
        return outcome


def send_checked(pipe: CommandPipe, commands: list[Any]) -> asyncio.Future[list[Any]]:
    """Send ``commands`` on ``pipe``; the future of their :func:`checked_replies`."""
    return pipe.send(commands, lambda outcome: checked_replies(pipe, outcome))
