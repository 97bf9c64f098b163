"""BullMQ commands to send on the store's pipe (``redis.pipe``): an add, a fetch.

``bullmq`` sends its scripts through redis-py and waits for the reply; the pipe needs
the command itself. Both are built here from the parts ``bullmq``'s ``Scripts`` uses
(its keys, its option encoding, its scripts' SHAs), the add as ``Queue.add`` would
send it for the options ILS gives (no parent, no repeat). Building ``bullmq``'s
``Job`` and running ``addJob`` against a recorder made the same command, but cost a
quarter of an enqueue's CPU (a ``Job`` object, the payload's JSON made twice more);
``tests/jobs/test_bull_piped.py`` holds the two equal over generated jobs, so a
``bullmq`` upgrade that changes what it sends fails there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from bullmq.backoffs import Backoffs
from redis.exceptions import NoScriptError

from ils.errors import InvalidPayloadError, StoreUnavailableError
from ils.jobs.model import ClaimedJob
from ils.jobs.stores.redis.bull import BullQueue, unavailable_guard
from ils.jobs.stores.redis.pipe import CommandPipe

#: The scripts sent by SHA on the pipe: those ``addJob`` chooses from (by delay and
#: priority), the fetch's and the completion's.
PIPED_SCRIPTS = (
    "addStandardJob",
    "addDelayedJob",
    "addPrioritizedJob",
    "moveToActive",
    "moveToFinished",
)
#: Each add script's keys, in the order of ``Scripts.addStandardJob`` and the others.
ADD_KEYS = {
    "addStandardJob": (
        "wait", "paused", "meta", "id", "completed", "delayed", "active", "events", "marker",
    ),
    "addDelayedJob": ("marker", "meta", "id", "delayed", "completed", "events"),
    "addPrioritizedJob": (
        "marker", "meta", "id", "prioritized", "delayed", "completed", "active", "events", "pc",
    ),
}  # fmt: skip
#: Job options ``Queue.add`` handles with more than packing, which ILS never sets.
UNSUPPORTED_OPTIONS = ("parent", "repeat", "repeatJobKey")
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


def add_command(
    bull: BullQueue, name: str, data: Mapping[str, Any], opts: dict[str, Any]
) -> AddCommand:
    """The command of ``Queue.add(name, data, opts)`` on ``bull``'s queue.

    Raises ``InvalidPayloadError`` for data JSON cannot carry (``NaN``, objects), as
    ``Queue.add`` would fail on it, before anything is sent.
    """
    if any(key in opts for key in UNSUPPORTED_OPTIONS):
        raise ValueError(f"job options {UNSUPPORTED_OPTIONS} are not supported on the pipe")
    scripts = bull.scripts
    try:
        json_data = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidPayloadError(
            bull.config.key, name, ["data: must be JSON-serialisable"]
        ) from None
    timestamp = opts.get("timestamp", round(time.time() * 1000))
    # ``Job.__init__``'s options, key order included (it is packed).
    job_opts = {
        "attempts": 0,
        "delay": 0,
        **opts,
        "backoff": Backoffs.normalize(opts.get("backoff")),
    }
    deduplication = opts.get("deduplication")
    dedup_id = deduplication.get("id") if isinstance(deduplication, dict) else None
    packed_args = msgpack.packb(
        [
            scripts.keys[""],
            opts.get("jobId") or "",
            name,
            timestamp,
            None,  # parent key
            None,  # parent dependencies key
            None,  # parent
            None,  # repeat job key
            f"{scripts.keys['']}de:{dedup_id}" if dedup_id else None,
        ],
        use_bin_type=True,
    )
    args = [packed_args, json_data, msgpack.packb(scripts.encodeOpts(job_opts))]
    if job_opts.get("delay"):
        script, last = "addDelayedJob", job_opts["delay"]
    elif job_opts.get("priority"):
        script, last = "addPrioritizedJob", job_opts["priority"]
    else:
        script, last = "addStandardJob", timestamp
    keys = scripts.getKeys(list(ADD_KEYS[script]))
    sha = scripts.commands[script].sha
    command = ("EVALSHA", sha, len(keys), *keys, *args, last)
    return AddCommand(command, None, scripts.finishedErrors)


def move_to_active_command(bull: BullQueue, token: str, *, sha: str = "") -> tuple[Any, ...]:
    """``moveToActive`` of the next job for ``token``, with the queue's lock duration
    and limiter; its reply is read by :func:`next_job`. ``sha``: a variant of the
    script to run instead (``redis.wait``'s, dated by Redis)."""
    scripts = bull.scripts
    keys = scripts.getKeys(list(MOVE_TO_ACTIVE_KEYS))
    opts = {
        "token": token,
        "lockDuration": bull.config.lock_duration_ms,
        "limiter": bull.worker.opts.get("limiter"),
    }
    packed = msgpack.packb(opts, use_bin_type=True)
    sha = sha or scripts.commands["moveToActive"].sha
    # Dated as bullmq dates it (its processedOn, the lock's and the limiter's start).
    return ("EVALSHA", sha, len(keys), *keys, scripts.keys[""], round(time.time() * 1000), packed)


def complete_command(
    bull: BullQueue,
    job: ClaimedJob,
    opts: Mapping[str, Any],
    value: Any,
    *,
    fetch_next: bool,
) -> tuple[Any, ...]:
    """``BullQueue.finish`` of a completed ``job`` as a command for the pipe (by SHA:
    the pipe loads the script on connect); its reply is read by ``finish_outcome``."""
    record = job.record
    keys, args = bull.finish_args(
        job.id,
        record.name,
        opts,
        record.attempts_made,
        job.token,
        completed=True,
        value=value,
        fetch_next=fetch_next,
    )
    sha = bull.scripts.commands["moveToFinished"].sha
    return ("EVALSHA", sha, len(keys), *keys, *args)


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
                raise ScriptsFlushedError("redis unavailable: its scripts were flushed")
            if isinstance(reply, BaseException):
                raise reply
        return outcome


class ScriptsFlushedError(StoreUnavailableError):
    """A script sent by SHA was refused (NOSCRIPT), and the pipe's next connection loads
    the scripts again. That command did not run; others of the same transaction may
    have, so it is not ``unsent``."""


async def send_script(pipe: CommandPipe, command: tuple[Any, ...]) -> Any:
    """One script command by SHA on ``pipe``, its checked reply. Refused because the
    scripts were flushed, it is sent once more on the new connection (that loads them):
    it did not run, so sending it again cannot run it twice. For commands that must
    not fail for that (a completion would otherwise be lost, and the job run again)."""
    try:
        return (await send_checked(pipe, [command]))[0]
    except ScriptsFlushedError:
        return (await send_checked(pipe, [command]))[0]


def send_checked(pipe: CommandPipe, commands: list[Any]) -> asyncio.Future[list[Any]]:
    """Send ``commands`` on ``pipe``; the future of their :func:`checked_replies`."""
    return pipe.send(commands, lambda outcome: checked_replies(pipe, outcome))
