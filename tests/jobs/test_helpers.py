"""The typed helpers: jobs.md names, payloads, priorities and attempts; bad input.

A fake in-memory sink records what the helpers enqueue. Expected values are copied
from jobs.md, so a helper that queues the wrong job, key, priority or attempts fails.
"""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.errors import InvalidPayloadError
from ils.jobs.helpers import JobHelpers
from ils.jobs.job_types import JobTypes, default_job_types
from ils.jobs.model import JobOptions, JobRef
from ils.jobs.sink import JobSink


@dataclass
class Call:
    queue: str
    name: str
    payload: BaseModel
    options: JobOptions
    session: AsyncSession | None


@dataclass
class FakeSink:
    """Records every enqueue; answers stats with a canned value."""

    calls: list[Call] = field(default_factory=list)
    stats_value: dict[str, Any] = field(default_factory=lambda: {"redis": False, "mode": "local"})

    async def enqueue(
        self,
        queue: str,
        name: str,
        payload: BaseModel,
        options: JobOptions,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        self.calls.append(Call(queue, name, payload, options, session))
        return JobRef(queue=queue, name=name, job_id=f"job-{len(self.calls)}", store="fake")

    async def stats(self) -> dict[str, Any]:
        return self.stats_value


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def helpers(sink: FakeSink) -> JobHelpers:
    typed_sink: JobSink = sink  # the fake must satisfy the protocol (checked by mypy)
    return JobHelpers(typed_sink, stats=sink.stats)


USER, ORDER, COMPANY = "user-1", "order-1", "company-1"

# jobs.md, copied by hand: helper, queue, job name, priority, attempts ("-" for the
# queue default). In jobs.md a helper's parameters are in the order of its payload keys.
HELPERS_MD_TABLE = """
queue_order_confirmation_email      email         order-confirmation        1 3
queue_shipment_notification_email   email         order-shipment            2 3
queue_purchase_order_email          email         purchase-order            2 5
queue_marketplace_connection_email  email         marketplace-connection    3 5
queue_general_notification_email    email         general-notification      3 3
queue_daily_briefing_email          email         daily-briefing            5 2
queue_order_sheet_pdf               pdf           order-sheet               2 -
queue_invoice_pdf                   pdf           invoice                   1 -
queue_receipt_pdf                   pdf           receipt                   3 -
queue_lab_work_ticket_pdf           pdf           lab-work-ticket           1 -
queue_examination_form_pdf          pdf           examination-form          2 -
queue_system_notification           notification  system-notification       3 5
queue_order_notification            notification  order-notification        2 5
queue_company_order_notification    notification  company-order-notification 2 5
queue_ai_insight_notification       notification  ai-insight-notification   3 3
queue_marketplace_notification      notification  marketplace-notification  2 3
queue_daily_briefing                ai            daily-briefing            3 -
queue_demand_forecast               ai            demand-forecast           3 -
queue_anomaly_detection             ai            anomaly-detection         2 -
queue_insight_generation            ai            insight-generation        3 -
queue_chat_response                 ai            chat-response             1 -
queue_oma_file                      oma           process-oma-file          2 -
queue_schedule_run                  scheduled     run-schedule              1 -
queue_cleanup_expired_data          scheduled     cleanup-expired-data      3 -
"""

# fmt: off
# Every argument given, and the camelCase payload it must produce (in jobs.md order).
CALLS: dict[str, dict[str, Any]] = {
    "queue_order_confirmation_email": {"orderId": ORDER, "userId": USER},
    "queue_shipment_notification_email": {
        "orderId": ORDER, "userId": USER, "trackingNumber": "1Z 999", "carrier": "UPS",
    },
    "queue_purchase_order_email": {"poId": "po-7", "supplierId": "sup-3"},
    "queue_marketplace_connection_email": {
        "connectionId": "conn-1", "requesterCompanyId": "comp-a", "targetCompanyId": "comp-b",
    },
    "queue_general_notification_email": {
        "userId": USER, "subject": "Welcome", "content": "Hello\nthere",
    },
    "queue_daily_briefing_email": {"userId": USER, "companyId": COMPANY, "date": "2026-11-03"},
    "queue_order_sheet_pdf": {"orderId": ORDER},
    "queue_invoice_pdf": {"invoiceId": "inv-1"},
    "queue_receipt_pdf": {"invoiceId": "inv-2"},
    "queue_lab_work_ticket_pdf": {"orderId": ORDER},
    "queue_examination_form_pdf": {"examinationId": "exam-9"},
    "queue_system_notification": {
        "userId": USER, "title": "Heads up", "message": "Maintenance at 2am",
        "priority": "medium", "actionUrl": "/status",
    },
    "queue_order_notification": {
        "userId": USER, "orderId": ORDER, "status": "shipped", "message": "On its way",
    },
    "queue_company_order_notification": {
        "companyId": COMPANY, "orderId": ORDER, "status": "accepted", "message": "Accepted",
    },
    "queue_ai_insight_notification": {
        "userId": USER, "insightType": "anomaly", "title": "Odd day",
        "summary": "Returns doubled", "detailUrl": "https://lab.example.com/ai/1",
    },
    "queue_marketplace_notification": {
        "userId": USER, "connectionId": "conn-1", "action": "request",
        "companyName": "Bright Optics",
    },
    "queue_daily_briefing": {"companyId": COMPANY, "date": "2026-11-03", "userIds": ["u1", "u2"]},
    "queue_demand_forecast": {"companyId": COMPANY, "forecastDays": 90, "productIds": ["p1"]},
    "queue_anomaly_detection": {
        "companyId": COMPANY, "metricType": "patients", "timeRange": "monthly",
    },
    "queue_insight_generation": {
        "companyId": COMPANY, "insightType": "operations",
        "periodStart": "2026-10-01", "periodEnd": "2026-10-31",
    },
    "queue_chat_response": {
        "userId": USER, "companyId": COMPANY, "conversationId": "conv-5",
        "message": "How many open orders?",
    },
    "queue_oma_file": {"orderId": ORDER, "fileId": "file-2"},
    "queue_schedule_run": {"scheduleId": "briefing:42", "manual": True},
    "queue_cleanup_expired_data": {"olderThanDays": 30},
}
# fmt: on

# Only the required arguments, and the payload with the jobs.md defaults filled in.
DEFAULTS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("queue_shipment_notification_email", (ORDER, USER, "T1"), {"carrier": None}),
    ("queue_system_notification", (USER, "t", "m"), {"priority": "medium", "actionUrl": None}),
    ("queue_ai_insight_notification", (USER, "forecast", "t", "s"), {"detailUrl": None}),
    ("queue_daily_briefing", (COMPANY, "2026-11-03"), {"userIds": None}),
    ("queue_demand_forecast", (COMPANY,), {"forecastDays": 30, "productIds": None}),
    ("queue_anomaly_detection", (COMPANY, "revenue"), {"timeRange": "daily"}),
]


def _parse_helpers_md() -> dict[str, tuple[str, str, int, int | None]]:
    table = {}
    for line in HELPERS_MD_TABLE.strip().splitlines():
        helper, queue, job, priority, attempts = line.split()
        table[helper] = (queue, job, int(priority), None if attempts == "-" else int(attempts))
    return table


HELPERS_MD = _parse_helpers_md()
EMAIL_HELPERS = [name for name, row in HELPERS_MD.items() if row[0] == "email"]

# fmt: off
# jobs.md signatures: positional parameters and their defaults (``...``: required).
SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    "queue_order_confirmation_email": [("order_id", ...), ("user_id", ...)],
    "queue_shipment_notification_email": [
        ("order_id", ...), ("user_id", ...), ("tracking_number", ...), ("carrier", None),
    ],
    "queue_purchase_order_email": [("po_id", ...), ("supplier_id", ...)],
    "queue_marketplace_connection_email": [
        ("connection_id", ...), ("requester_company_id", ...), ("target_company_id", ...),
    ],
    "queue_general_notification_email": [("user_id", ...), ("subject", ...), ("content", ...)],
    "queue_daily_briefing_email": [("user_id", ...), ("company_id", ...), ("date", ...)],
    "queue_order_sheet_pdf": [("order_id", ...)],
    "queue_invoice_pdf": [("invoice_id", ...)],
    "queue_receipt_pdf": [("invoice_id", ...)],
    "queue_lab_work_ticket_pdf": [("order_id", ...)],
    "queue_examination_form_pdf": [("examination_id", ...)],
    "queue_system_notification": [
        ("user_id", ...), ("title", ...), ("message", ...), ("priority", "medium"),
        ("action_url", None),
    ],
    "queue_order_notification": [
        ("user_id", ...), ("order_id", ...), ("status", ...), ("message", ...),
    ],
    "queue_company_order_notification": [
        ("company_id", ...), ("order_id", ...), ("status", ...), ("message", ...),
    ],
    "queue_ai_insight_notification": [
        ("user_id", ...), ("insight_type", ...), ("title", ...), ("summary", ...),
        ("detail_url", None),
    ],
    "queue_marketplace_notification": [
        ("user_id", ...), ("connection_id", ...), ("action", ...), ("company_name", ...),
    ],
    "queue_daily_briefing": [("company_id", ...), ("date", ...), ("user_ids", None)],
    "queue_demand_forecast": [("company_id", ...), ("forecast_days", 30), ("product_ids", None)],
    "queue_anomaly_detection": [
        ("company_id", ...), ("metric_type", ...), ("time_range", "daily"),
    ],
    "queue_insight_generation": [
        ("company_id", ...), ("insight_type", ...), ("period_start", ...), ("period_end", ...),
    ],
    "queue_chat_response": [
        ("user_id", ...), ("company_id", ...), ("conversation_id", ...), ("message", ...),
    ],
    "queue_oma_file": [("order_id", ...), ("file_id", ...)],
    "queue_schedule_run": [("schedule_id", ...), ("manual", False)],
    "queue_cleanup_expired_data": [("older_than_days", None)],
}
# fmt: on


def helper(helpers: JobHelpers, name: str) -> Any:
    return getattr(helpers, name)


def payload_json(call: Call) -> dict[str, Any]:
    return call.payload.model_dump(mode="json", by_alias=True)


def test_there_is_one_helper_per_jobs_md_job(helpers: JobHelpers) -> None:
    # queue_many is the batch form of any of them, not a job of its own.
    public = {n for n in dir(helpers) if n.startswith("queue_") and n != "queue_many"}
    assert public == set(HELPERS_MD) == set(CALLS) == set(SIGNATURES)
    assert len(public) == 24


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_helper_signature_is_that_of_jobs_md(helpers: JobHelpers, name: str) -> None:
    params = inspect.signature(helper(helpers, name)).parameters.values()
    positional = [
        (p.name, ... if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    keyword_only = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert positional == SIGNATURES[name]
    expected_kw = (
        {"session": None, "attempts": None} if name in EMAIL_HELPERS else {"session": None}
    )
    assert keyword_only == expected_kw
    assert inspect.iscoroutinefunction(helper(helpers, name))


@pytest.mark.parametrize("name", list(HELPERS_MD))
async def test_helper_enqueues_the_jobs_md_job(
    helpers: JobHelpers, sink: FakeSink, name: str
) -> None:
    queue, job, priority, attempts = HELPERS_MD[name]
    ref = await helper(helpers, name)(*CALLS[name].values())
    assert ref == JobRef(queue=queue, name=job, job_id="job-1", store="fake")
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert (call.queue, call.name) == (queue, job)
    expected = {"type": job, **CALLS[name]}
    assert payload_json(call) == expected
    assert list(payload_json(call)) == list(expected)
    assert call.options == JobOptions(priority=priority, attempts=attempts)
    assert call.session is None


@pytest.mark.parametrize(("name", "args", "defaults"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
async def test_omitted_arguments_take_the_jobs_md_defaults(
    helpers: JobHelpers,
    sink: FakeSink,
    name: str,
    args: tuple[Any, ...],
    defaults: dict[str, Any],
) -> None:
    await helper(helpers, name)(*args)
    out = payload_json(sink.calls[0])
    assert {key: out[key] for key in defaults} == defaults


@pytest.mark.parametrize("name", list(HELPERS_MD))
async def test_session_is_passed_to_the_sink(
    helpers: JobHelpers, sink: FakeSink, name: str
) -> None:
    session = cast(AsyncSession, object())
    await helper(helpers, name)(*CALLS[name].values(), session=session)
    assert sink.calls[0].session is session


async def test_python_dates_and_tuples_are_accepted(helpers: JobHelpers, sink: FakeSink) -> None:
    await helpers.queue_daily_briefing(COMPANY, dt.date(2026, 11, 3), ("u1", "u2"))
    await helpers.queue_insight_generation(
        COMPANY, "revenue", dt.date(2026, 1, 1), dt.date(2026, 1, 1)
    )
    first, second = (payload_json(call) for call in sink.calls)
    assert (first["date"], first["userIds"]) == ("2026-11-03", ["u1", "u2"])
    assert (second["periodStart"], second["periodEnd"]) == ("2026-01-01", "2026-01-01")


@pytest.mark.parametrize(
    ("priority", "expected"), [("urgent", 1), ("high", 2), ("medium", 3), ("low", 4)]
)
async def test_system_notification_priority_follows_its_argument(
    helpers: JobHelpers, sink: FakeSink, priority: Any, expected: int
) -> None:
    await helpers.queue_system_notification(USER, "t", "m", priority=priority)
    assert sink.calls[0].options == JobOptions(priority=expected, attempts=5)


@pytest.mark.parametrize("name", EMAIL_HELPERS)
@pytest.mark.parametrize("attempts", [2, 4, 5])
async def test_email_helpers_may_set_2_to_5_attempts(
    helpers: JobHelpers, sink: FakeSink, name: str, attempts: int
) -> None:
    await helper(helpers, name)(*CALLS[name].values(), attempts=attempts)
    assert sink.calls[0].options == JobOptions(priority=HELPERS_MD[name][2], attempts=attempts)


@pytest.mark.parametrize("name", EMAIL_HELPERS)
@pytest.mark.parametrize("attempts", [0, 1, 6, 100, -3, True, 2.5, "3"])
async def test_email_attempts_outside_2_to_5_are_refused(
    helpers: JobHelpers, sink: FakeSink, name: str, attempts: object
) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        await helper(helpers, name)(*CALLS[name].values(), attempts=attempts)
    assert [p.split(":")[0] for p in info.value.problems] == ["attempts"]
    assert (info.value.queue, info.value.name) == ("email", HELPERS_MD[name][1])
    assert sink.calls == []


async def test_non_email_helpers_take_no_attempts(helpers: JobHelpers, sink: FakeSink) -> None:
    with pytest.raises(TypeError):
        await helper(helpers, "queue_invoice_pdf")("inv-1", attempts=4)
    assert sink.calls == []


SECRET = "Jane Doe 1984-02-03"


@pytest.mark.parametrize(
    ("name", "args", "field", "secret"),
    [
        ("queue_order_confirmation_email", ("", USER), "orderId", None),
        ("queue_order_confirmation_email", (ORDER, SECRET), "userId", SECRET),
        ("queue_invoice_pdf", ("inv 42",), "invoiceId", "inv 42"),
        ("queue_oma_file", (ORDER, "x" * 65), "fileId", "x" * 65),
        ("queue_system_notification", (USER, "t", "m", "Jane-urgent"), "priority", "Jane-urgent"),
        ("queue_anomaly_detection", (COMPANY, "patient-Jane"), "metricType", "patient-Jane"),
        ("queue_anomaly_detection", (COMPANY, "orders", "yearly"), "timeRange", "yearly"),
        ("queue_marketplace_notification", (USER, "c1", "maybe-Jane", "X"), "action", "maybe-Jane"),
        ("queue_ai_insight_notification", (USER, "operations", "t", "s"), "insightType", None),
        ("queue_daily_briefing_email", (USER, COMPANY, "2026-02-30"), "date", "2026-02-30"),
        ("queue_daily_briefing", (COMPANY, "3 Nov 2026"), "date", "3 Nov 2026"),
        (
            "queue_insight_generation",
            (COMPANY, "revenue", "2026-10-31", "2026-10-01"),
            "periodEnd",
            "2026-10-01",
        ),
        ("queue_general_notification_email", (USER, "S" * 201, "c"), "subject", "S" * 201),
        (
            "queue_general_notification_email",
            (USER, f"Hi\r\nBcc: {SECRET}", "c"),
            "subject",
            SECRET,
        ),
        ("queue_general_notification_email", (USER, "s", ""), "content", None),
        ("queue_shipment_notification_email", (ORDER, USER, "T" * 65), "trackingNumber", "T" * 65),
        (
            "queue_system_notification",
            (USER, "t", "m", "high", "javascript:alert(1)"),
            "actionUrl",
            "javascript:alert(1)",
        ),
        ("queue_demand_forecast", (COMPANY, 0), "forecastDays", None),
        ("queue_demand_forecast", (COMPANY, 400), "forecastDays", "400"),
        ("queue_demand_forecast", (COMPANY, 30, ["p1", "p1"]), "productIds", None),
        ("queue_demand_forecast", (COMPANY, 30, "p1"), "productIds", None),
        ("queue_chat_response", (USER, COMPANY, "conv", "m" * 4001), "message", "m" * 4001),
    ],
)
async def test_bad_input_raises_and_queues_nothing(
    helpers: JobHelpers,
    sink: FakeSink,
    name: str,
    args: tuple[Any, ...],
    field: str,
    secret: str | None,
) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        await helper(helpers, name)(*args)
    exc = info.value
    assert sink.calls == []
    assert any(p.startswith(f"{field}:") or p.startswith(f"{field}[") for p in exc.problems)
    if secret is not None:
        assert secret not in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None


async def test_all_problems_are_reported_together(helpers: JobHelpers, sink: FakeSink) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        await helpers.queue_purchase_order_email("", "bad id", attempts=9)
    assert [p.split(":")[0] for p in info.value.problems] == ["attempts", "poId", "supplierId"]
    assert sink.calls == []


async def test_datetime_is_refused_for_a_date(helpers: JobHelpers, sink: FakeSink) -> None:
    when = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)
    with pytest.raises(InvalidPayloadError):
        await helpers.queue_daily_briefing_email(USER, COMPANY, when)
    assert sink.calls == []


async def test_get_queue_stats_returns_the_sink_stats(helpers: JobHelpers, sink: FakeSink) -> None:
    sink.stats_value = {"redis": True, "mode": "redis", "email": {"waiting": 5}}
    assert await helpers.get_queue_stats() == {
        "redis": True,
        "mode": "redis",
        "email": {"waiting": 5},
    }


async def test_helpers_use_the_registry_they_are_given(sink: FakeSink) -> None:
    custom = JobTypes(
        replace(jt, priority=7, attempts=9) if jt.name == "invoice" else jt
        for jt in default_job_types()
    )
    await JobHelpers(sink, custom).queue_invoice_pdf("inv-1")
    assert sink.calls[0].options == JobOptions(priority=7, attempts=9)


async def test_each_call_returns_its_own_ref(helpers: JobHelpers) -> None:
    first = await helpers.queue_invoice_pdf("inv-1")
    second = await helpers.queue_receipt_pdf("inv-1")
    assert (first.job_id, second.job_id) == ("job-1", "job-2")
    assert (second.queue, second.name) == ("pdf", "receipt")
