"""The pipe's add command is the one ``bullmq``'s ``Queue.add`` sends.

``bull_piped.add_command`` builds the ``EVALSHA`` itself (a ``bullmq.Job`` and its
``addJob`` cost a quarter of an enqueue's CPU). The oracle here is ``bullmq``'s own
``addJob``, run against a recorder in place of the client: for generated jobs (every
option ILS sets: priority, delay, id, attempts, back-off, retention, company,
deduplication), both commands must be equal, argument for argument. A ``bullmq``
upgrade that changes what ``Queue.add`` sends fails here.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import bullmq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ils.errors import InvalidPayloadError
from ils.jobs.catalogue import Catalogue
from ils.jobs.model import JobOptions, NewJob
from ils.jobs.stores.redis.bull import BullQueue, make_client
from ils.jobs.stores.redis.bull_piped import add_command
from ils.jobs.stores.redis.codec import bull_options
from ils.jobs.stores.redis.connect import as_connection

QUEUES = ("email", "pdf", "notification")


class _Recorder:
    """A stand-in client that records the ``EVALSHA`` ``addJob`` asks it to run."""

    command: tuple[Any, ...] | None = None

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> str:
        self.command = ("EVALSHA", sha, numkeys, *keys_and_args)
        return ""


def bullmq_command(bull: BullQueue, name: str, data: dict[str, Any], opts: dict[str, Any]) -> Any:
    """What ``Queue.add(name, data, opts)`` sends: its own ``Job`` and ``addJob``."""
    job = bullmq.Job(bull.queue, name, dict(data), {**bull.queue.jobsOpts, **opts})
    recorder = _Recorder()
    step = bull.scripts.addJob(job, recorder)
    with pytest.raises(StopIteration):
        step.send(None)
    return recorder.command


@pytest.fixture
async def bulls(test_catalogue: Catalogue) -> AsyncIterator[dict[str, BullQueue]]:
    # Never connected: the commands are only built.
    client = make_client(as_connection("redis://127.0.0.1:1"), 100)
    yield {
        queue: BullQueue(test_catalogue[queue], client, prefix="ilstest-piped") for queue in QUEUES
    }
    await client.aclose()


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    queue=st.sampled_from(QUEUES),
    name=st.text(min_size=1, max_size=20),
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    priority=st.sampled_from([0, 1, 7, 2_097_152]),
    delay_ms=st.sampled_from([0, 1, 60_000]),
    job_id=st.none() | st.text(alphabet="abc-123", min_size=1, max_size=12),
    attempts=st.none() | st.integers(1, 20),
    backoff=st.none() | st.integers(0, 10_000),
    company=st.none() | st.sampled_from(["co-1", "co-2"]),
    timestamp=st.integers(1_700_000_000_000, 1_900_000_000_000),
    dedup=st.booleans(),
)
async def test_the_add_command_is_bullmqs_own(
    bulls: dict[str, BullQueue],
    queue: str,
    name: str,
    data: dict[str, Any],
    priority: int,
    delay_ms: int,
    job_id: str | None,
    attempts: int | None,
    backoff: int | None,
    company: str | None,
    timestamp: int,
    dedup: bool,
) -> None:
    bull = bulls[queue]
    options = JobOptions(
        priority=priority,
        delay_ms=delay_ms,
        job_id=job_id,
        attempts=attempts,
        backoff_delay_ms=backoff,
        company_id=company,
    )
    opts = bull_options(bull.config, NewJob(name, data, options))
    opts["timestamp"] = timestamp
    if dedup and job_id is not None:
        opts["deduplication"] = {"id": job_id, "ttl": 600_000}
    ours = add_command(bull, name, data, dict(opts))
    assert ours.command == bullmq_command(bull, name, data, dict(opts))


@pytest.mark.parametrize("bad", [math.nan, math.inf, object()])
async def test_data_json_cannot_carry_is_refused_before_anything_is_sent(
    bulls: dict[str, BullQueue], bad: Any
) -> None:
    with pytest.raises(InvalidPayloadError, match="JSON-serialisable") as caught:
        add_command(bulls["email"], "order-confirmation", {"x": bad}, {"timestamp": 1})
    assert repr(bad) not in str(caught.value)  # the error names no value
