"""Failure groups: the fingerprint's masking, grouping over both stores of Redis mode
in a company's scope, and retrying or removing a whole group in batches.

The stores are real (Redis with SQLite or PostgreSQL, and memory with SQLite), the
failures are recorded the way the consumer records them: a reason and the stack
trace of a raised exception.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ils.errors import PermanentJobError
from ils.jobs.admin import JobAction, JobAdmin
from ils.jobs.catalogue import Catalogue
from ils.jobs.failures import (
    ActionBounds,
    FailureGroupNotFoundError,
    exception_type,
    fingerprint,
    group_failures,
    group_jobs,
    mask_message,
    remove_group,
    retry_group,
)
from ils.jobs.model import JobOptions, JobRecord, JobState, NewJob
from ils.jobs.stores.base import JobStore
from tests.support.stores import PAIRS, admin_over, store_pair, unlimited_catalogue

EMAIL, PDF = "email", "pdf"
QUEUES = (EMAIL, PDF)


def trace_of(exc: Exception) -> str:
    """The stack trace the consumer stores for ``exc`` (``traceback.format_exc``)."""
    try:
        raise exc
    except Exception:
        return traceback.format_exc()


def lens_data(order_id: str) -> tuple[str, str]:
    """One of ILS's own errors: the reason is its message alone."""
    exc = PermanentJobError(f"order {order_id} has no lens data")
    return str(exc), trace_of(exc)


def smtp(code: int, address: str) -> tuple[str, str]:
    """A foreign error: the consumer's reason is ``Type: message``."""
    exc = ConnectionError(f"SMTP {code} try again later for {address}")
    return f"ConnectionError: {exc}", trace_of(exc)


# -- the fingerprint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        (
            "order 3fa85f64-5717-4562-b3fc-2c963f66afa6 has no lens data",
            "order <uuid> has no lens data",
        ),
        ("order 3FA85F6457174562B3FC2C963F66AFA6 gone", "order <uuid> gone"),
        ("SMTP 451 4.7.1 try again for ada@lab.example", "SMTP <n> <n> try again for <email>"),
        ("took 1500ms on attempt3", "took <n>ms on attempt<n>"),
        ("tx-ab12cd34ef not found", "tx-<id> not found"),
        ("order-000123 missing", "order-<n> missing"),
        ("document cmb1x9q0z000008l1 gone", "document <id> gone"),
        ("hash 9f86d081884c7d65 mismatch", "hash <id> mismatch"),
        ("file of 123456789 bytes", "file of <n> bytes"),
        ("ip 10.0.0.1 refused", "ip <n> refused"),
        ("user_12345678 locked", "user_<n> locked"),
        ("  two\n lines\tof text ", "two lines of text"),
        ("the order has no lens data", "the order has no lens data"),
        ("", ""),
    ],
)
def test_masking(message: str, masked: str) -> None:
    assert mask_message(message) == masked


def test_a_long_message_is_cut() -> None:
    masked = mask_message("word " * 200)
    assert len(masked) == 300 and masked.endswith("…")


#: Kinds of identifier a message may carry; two of one kind must mask alike.
ID_KINDS = (
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex.upper()),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.builds(
        "{}.{}@{}.example".format,
        st.text("abcdefghij", min_size=1, max_size=8),
        st.integers(min_value=0, max_value=999),
        st.text("klmnopqrst0123456789", min_size=1, max_size=8),
    ),
    # Hex ids with letters and digits (32 hex digits are a uuid, masked as one).
    st.text("0123456789abcdef", min_size=8, max_size=31).filter(
        lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s)
    ),
)
WORDS = st.lists(
    st.sampled_from(["order", "for", "has", "no", "lens", "data:", "user"]), max_size=4
)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), before=WORDS, after=WORDS, kind=st.sampled_from(ID_KINDS))
def test_messages_differing_only_in_ids_share_a_mask(
    data: st.DataObject, before: list[str], after: list[str], kind: st.SearchStrategy[str]
) -> None:
    """Two identifiers of one kind (uuids, numbers, e-mail addresses, hex ids) in the
    same sentence mask alike, so their failures are one group, and neither is shown."""
    one, other = data.draw(kind), data.draw(kind)

    def sentence(value: str) -> str:
        return " ".join([*before, value, *after])

    masked = mask_message(sentence(one))
    assert masked == mask_message(sentence(other))
    assert one not in masked.split()


def test_exception_types() -> None:
    reason, trace = lens_data("o1")
    assert exception_type(reason, trace) == "ils.errors.PermanentJobError"
    reason, trace = smtp(451, "a@b.example")
    assert exception_type(reason, trace) == "ConnectionError"
    node = "TypeError: cannot read properties of undefined\n    at draw (/app/pdf.js:10:5)"
    assert exception_type("cannot read properties of undefined", node) == "TypeError"
    # No trace: a reason of the form "Type: message" names it; a sentence does not.
    assert exception_type("ValueError: bad lens", None) == "ValueError"
    assert exception_type("job stalled more than allowable limit", None) == ""


def record(job_id: str, reason: str | None, trace: str | None, finished_ms: int) -> JobRecord:
    return JobRecord(
        id=job_id, queue=EMAIL, name="order-confirmation", data={}, state=JobState.FAILED,
        priority=0, attempts=1, attempts_made=1, backoff_delay_ms=0, delay_ms=0,
        progress=None, result=None, failed_reason=reason,
        stacktrace=["an older attempt's trace", trace] if trace else [],
        created_at_ms=finished_ms - 10, processed_at_ms=finished_ms - 5,
        finished_at_ms=finished_ms,
    )  # fmt: skip


def test_fingerprint_parts_and_the_type_prefix_left_out_of_the_message() -> None:
    reason, trace = smtp(421, "ada@lab.example")
    found = fingerprint(record("j1", reason, trace, 1_000))
    assert (found.queue, found.name, found.exception_type) == (
        EMAIL,
        "order-confirmation",
        "ConnectionError",
    )
    assert found.message == "SMTP <n> try again later for <email>"
    other = fingerprint(record("j2", *smtp(550, "bob@practice.example"), 2_000))
    assert other.id == found.id and found.id.startswith(f"{EMAIL}-")
    # The same message in another queue, of another job name or type: another group.
    assert fingerprint(replace(record("j3", reason, trace, 1), queue=PDF)).id != found.id
    assert fingerprint(replace(record("j4", reason, trace, 1), name="x")).id != found.id
    assert fingerprint(record("j5", *lens_data("o1"), 1)).id != found.id


def test_groups_count_times_and_sample_whatever_the_order() -> None:
    jobs = [
        record("old", *lens_data("o1"), 1_000),
        record("newest", *lens_data("o2"), 3_000),
        record("mid", *lens_data("o3"), 2_000),
        record("smtp", *smtp(451, "a@b.example"), 2_500),
    ]
    for ordering in (jobs, jobs[::-1]):
        lens, mail = group_jobs(ordering)
        assert (lens.count, lens.first_seen_ms, lens.last_seen_ms) == (3, 1_000, 3_000)
        assert lens.sample_job_id == "newest"
        # The sample trace is the newest job's last attempt's, not an older attempt's.
        assert lens.sample_stacktrace is not None
        assert "PermanentJobError: order o2 has no lens data" in lens.sample_stacktrace
        assert (mail.count, mail.sample_job_id) == (1, "smtp")


# -- over real stores ------------------------------------------------------------------------


@pytest.fixture
def catalogue() -> Catalogue:
    """No rate limits: each fetch claims a waiting job at once."""
    return unlimited_catalogue(EMAIL, PDF)


@pytest.fixture(params=PAIRS)
async def pair(
    request: pytest.FixtureRequest, catalogue: Catalogue
) -> AsyncIterator[tuple[JobStore, JobStore]]:
    """(Redis or memory, SQLite or PostgreSQL): the two stores of Redis mode."""
    async with store_pair(request, catalogue) as stores:
        yield stores


@pytest.fixture
def admin(pair: tuple[JobStore, JobStore]) -> JobAdmin:
    """An admin of every company over both stores."""
    return admin_over(*pair)


Failure = tuple[str, str]  # (reason, stack trace)


async def fail(
    store: JobStore, queue: str, failures: Sequence[Failure], company: str | None = "c1"
) -> list[str]:
    """One job per failure, each failed for good with its reason and trace; the ids."""
    jobs = [
        NewJob(
            "order-confirmation",
            {"type": "order-confirmation", "orderId": f"o{n}", "userId": "u1"},
            JobOptions(job_id=f"{queue}-{uuid.uuid4().hex}", attempts=1, company_id=company),
        )
        for n in range(len(failures))
    ]
    ids = await store.add_bulk(queue, jobs)
    planned = dict(zip(ids, failures, strict=True))
    for _ in ids:
        fetched = await store.fetch(queue, uuid.uuid4().hex)
        assert fetched.job is not None
        reason, trace = planned[fetched.job.id]
        await store.fail(queue, fetched.job, reason, trace, retry=False)
    return ids


def lens_failures(count: int) -> list[Failure]:
    return [lens_data(str(uuid.uuid4())) for _ in range(count)]


async def states(admin: JobAdmin, queue: str, ids: Sequence[str]) -> dict[str, JobState | None]:
    found = {job_id: await admin.find(queue, job_id) for job_id in ids}
    return {job_id: None if job is None else job.state for job_id, job in found.items()}


async def test_groups_span_both_stores_and_follow_the_scope(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    lens_first = await fail(first, EMAIL, lens_failures(3))
    mail = await fail(first, EMAIL, [smtp(451, "ada@lab.example"), smtp(421, "bob@x.example")])
    lens_second = await fail(second, EMAIL, lens_failures(2))
    other_company = await fail(second, EMAIL, lens_failures(4), company="c2")
    in_pdf = await fail(first, PDF, lens_failures(1))

    report = await group_failures(admin, QUEUES)
    assert (report.failed, report.scanned, report.truncated) == (12, 12, False)
    lens, *rest = report.groups
    assert lens.count == 9 and lens.queue == EMAIL
    assert lens.exception_type == "ils.errors.PermanentJobError"
    assert lens.message == "order <uuid> has no lens data"
    assert sorted((g.queue, g.count, g.exception_type) for g in rest) == [
        (EMAIL, 2, "ConnectionError"),
        (PDF, 1, "ils.errors.PermanentJobError"),
    ]
    members = [
        await admin.get(EMAIL, job_id) for job_id in lens_first + lens_second + other_company
    ]
    finished = [job.finished_at_ms or 0 for job in members]
    assert (lens.first_seen_ms, lens.last_seen_ms) == (min(finished), max(finished))
    newest = [job for job in members if job.finished_at_ms == max(finished)]
    assert lens.sample_job_id in {job.id for job in newest}
    assert lens.sample_stacktrace is not None and "PermanentJobError" in lens.sample_stacktrace

    # A company's admin sees its own failures only: the same group, counted for it.
    mine = await group_failures(admin.for_company("c1"), QUEUES)
    assert mine.failed == 8
    assert {g.fingerprint: g.count for g in mine.groups}[lens.fingerprint] == 5
    theirs = await group_failures(admin.for_company("c2"), [EMAIL])
    assert [(g.fingerprint, g.count) for g in theirs.groups] == [(lens.fingerprint, 4)]
    assert not (set(mail) | set(in_pdf)) & {g.sample_job_id for g in theirs.groups}

    # Bounded: the newest two of each queue, and the report says it did not read all.
    bounded = await group_failures(admin, QUEUES, per_queue=2)
    assert (bounded.scanned, bounded.failed, bounded.truncated) == (3, 12, True)
    assert bounded.truncated_queues == [EMAIL]  # pdf holds one failed job: all read


async def test_retry_a_group_of_250_in_batches(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    group = await fail(first, EMAIL, lens_failures(150))
    group += await fail(second, EMAIL, lens_failures(100))
    others = await fail(first, EMAIL, [smtp(451, f"u{n}@x.example") for n in range(5)])
    theirs = await fail(second, EMAIL, lens_failures(3), company="c2")
    report = await group_failures(admin.for_company("c1"), QUEUES)
    lens = next(g for g in report.groups if g.exception_type.endswith("PermanentJobError"))
    assert lens.count == 250

    # At most 200 per action, in batches of 100: the answer says
    # that some remain; the same action again takes the rest.
    bounds = ActionBounds(batch_size=100, max_jobs=200)
    mine = admin.for_company("c1")
    first_go = await retry_group(mine, lens.fingerprint, QUEUES, bounds)
    assert (len(first_go.done), first_go.missing, first_go.truncated) == (200, [], True)
    assert first_go.action is JobAction.RETRY
    newest = (await mine.list_jobs(EMAIL, JobState.FAILED, limit=300)).jobs
    left = [job.id for job in newest if job.id in set(group)]
    assert sorted(left) == sorted(set(group) - set(first_go.done)) and len(left) == 50
    second_go = await retry_group(mine, lens.fingerprint, QUEUES, bounds)
    assert (sorted(second_go.done), second_go.truncated) == (sorted(left), False)
    assert set((await states(admin, EMAIL, group)).values()) == {JobState.WAITING}
    # The other group and the other company's jobs of the same fingerprint stay failed.
    assert set((await states(admin, EMAIL, others + theirs)).values()) == {JobState.FAILED}
    # Retried: the group is gone for this company.
    with pytest.raises(FailureGroupNotFoundError):
        await retry_group(mine, lens.fingerprint, QUEUES)


class Interfering(JobAdmin):
    """An admin that lets another operator act on one job of the group just before
    the group action reaches its first job."""

    def __init__(self, admin: JobAdmin, store: JobStore, victim: str, action: JobAction) -> None:
        super().__init__(admin._source, admin._clock, admin.scope)
        self.store, self.victim, self.action, self.done = store, victim, action, False

    async def find(self, queue: str, job_id: str) -> JobRecord | None:
        if not self.done:
            self.done = True
            if self.action is JobAction.RETRY:
                await self.store.retry_job(queue, self.victim)
            else:
                await self.store.remove_job(queue, self.victim)
        return await super().find(queue, job_id)


async def test_jobs_changed_meanwhile_are_missing_and_left_alone(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, _ = pair
    group = await fail(first, EMAIL, lens_failures(5))
    print_ = fingerprint(await admin.get(EMAIL, group[0])).id
    # Retried by someone else meanwhile: removing the group must not delete it now
    # that it waits to run again.
    retried = group[-1]
    meddling = Interfering(admin, first, retried, JobAction.RETRY)
    result = await remove_group(meddling, print_, QUEUES, ActionBounds(batch_size=2))
    assert result.missing == [retried]
    assert sorted(result.done) == sorted(group[:-1])
    assert await states(admin, EMAIL, group) == {
        **dict.fromkeys(group[:-1]),
        retried: JobState.WAITING,
    }


async def test_unknown_groups_are_not_found(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, _ = pair
    group = await fail(first, EMAIL, lens_failures(2))
    print_ = fingerprint(await admin.get(EMAIL, group[0])).id
    queue, _, digest = print_.rpartition("-")
    for wrong in ("", "nonsense", f"{queue}-{'0' * 16}", f"sms-{digest}", f"{queue}-{digest}x"):
        with pytest.raises(FailureGroupNotFoundError):
            await retry_group(admin, wrong, QUEUES)
    # Another company's group is exactly as unknown.
    with pytest.raises(FailureGroupNotFoundError):
        await remove_group(admin.for_company("c2"), print_, QUEUES)
    assert set((await states(admin, EMAIL, group)).values()) == {JobState.FAILED}
