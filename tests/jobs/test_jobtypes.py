"""The job-type catalogue against jobs.md, and the payload models' validation.

The expected values here are copied from jobs.md by hand, never derived from the code
under test, so a wrong name, key, priority or attempt count fails a test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from ils.errors import ConfigurationError, InvalidPayloadError, UnknownJobTypeError
from ils.jobs.job_types import (
    InvoicePdf,
    JobType,
    JobTypes,
    OrderSheetPdf,
    default_job_types,
    validate_payload,
)

# The catalogue of jobs.md, copied by hand: queue, job name, priority, attempts ("-" for
# the queue default), then the payload keys in jobs.md order.
JOBS_MD_TABLE = """
email         order-confirmation        1 3  type orderId userId
email         order-shipment            2 3  type orderId userId trackingNumber carrier
email         purchase-order            2 5  type poId supplierId
email         marketplace-connection    3 5  type connectionId requesterCompanyId targetCompanyId
email         general-notification      3 3  type userId subject content
email         daily-briefing            5 2  type userId companyId date
pdf           order-sheet               2 -  type orderId
pdf           invoice                   1 -  type invoiceId
pdf           receipt                   3 -  type invoiceId
pdf           lab-work-ticket           1 -  type orderId
pdf           examination-form          2 -  type examinationId
notification  system-notification       3 5  type userId title message priority actionUrl
notification  order-notification        2 5  type userId orderId status message
notification  company-order-notification 2 5  type companyId orderId status message
notification  ai-insight-notification   3 3  type userId insightType title summary detailUrl
notification  marketplace-notification  2 3  type userId connectionId action companyName
notification  urgent-notification-email 1 3  type notificationId
ai            daily-briefing            3 -  type companyId date userIds
ai            demand-forecast           3 -  type companyId forecastDays productIds
ai            anomaly-detection         2 -  type companyId metricType timeRange
ai            insight-generation        3 -  type companyId insightType periodStart periodEnd
ai            chat-response             1 -  type userId companyId conversationId message
oma           process-oma-file          2 -  type orderId fileId
scheduled     run-schedule              1 -  type scheduleId manual
scheduled     cleanup-expired-data      3 -  type olderThanDays
"""


def _parse_jobs_md() -> dict[tuple[str, str], tuple[list[str], int, int | None]]:
    table = {}
    for line in JOBS_MD_TABLE.strip().splitlines():
        queue, name, priority, attempts, *keys = line.split()
        table[(queue, name)] = (keys, int(priority), None if attempts == "-" else int(attempts))
    return table


JOBS_MD = _parse_jobs_md()

UUID_A = "3f2b8c1e-9d4a-4e7b-8a61-0c5d2e9f7b13"
UUID_B = "a0c4e6f8-1b3d-4f5a-9c7e-2d4f6a8c0e1b"

# Job data as the TypeScript service stores it with BullMQ (JSON.stringify of the
# payload object): camelCase, every key present, optional ones as null. ``$A``/``$B``
# stand for two UUIDs.
TS_JSON: dict[tuple[str, str], str] = {
    ("email", "order-confirmation"): '{"type":"order-confirmation","orderId":"$A","userId":"$B"}',
    ("email", "order-shipment"): (
        '{"type":"order-shipment","orderId":"$A","userId":"$B",'
        '"trackingNumber":"1Z999AA10123456784","carrier":null}'
    ),
    (
        "email",
        "purchase-order",
    ): '{"type":"purchase-order","poId":"PO-2026-0042","supplierId":"$B"}',
    ("email", "marketplace-connection"): (
        '{"type":"marketplace-connection","connectionId":"$A",'
        '"requesterCompanyId":"comp_1","targetCompanyId":"comp_2"}'
    ),
    ("email", "general-notification"): (
        '{"type":"general-notification","userId":"$B","subject":"Your lab account",'
        '"content":"Hello,\\n\\nYour account is ready."}'
    ),
    ("email", "daily-briefing"): (
        '{"type":"daily-briefing","userId":"$B","companyId":"42","date":"2026-11-03"}'
    ),
    ("pdf", "order-sheet"): '{"type":"order-sheet","orderId":"$A"}',
    ("pdf", "invoice"): '{"type":"invoice","invoiceId":"INV-2026-0001"}',
    ("pdf", "receipt"): '{"type":"receipt","invoiceId":"INV-2026-0001"}',
    ("pdf", "lab-work-ticket"): '{"type":"lab-work-ticket","orderId":"1234"}',
    ("pdf", "examination-form"): '{"type":"examination-form","examinationId":"$A"}',
    ("notification", "system-notification"): (
        '{"type":"system-notification","userId":"$B","title":"Maintenance tonight",'
        '"message":"The platform is down 02:00-02:30.","priority":"high","actionUrl":null}'
    ),
    ("notification", "order-notification"): (
        '{"type":"order-notification","userId":"$B","orderId":"$A",'
        '"status":"in_production","message":"Your order is being surfaced."}'
    ),
    ("notification", "company-order-notification"): (
        '{"type":"company-order-notification","companyId":"42","orderId":"$A",'
        '"status":"accepted","message":"Order ORD-2026-000042 is now accepted"}'
    ),
    ("notification", "ai-insight-notification"): (
        '{"type":"ai-insight-notification","userId":"$B","insightType":"forecast",'
        '"title":"Demand forecast ready","summary":"Progressive lenses up 12%.",'
        '"detailUrl":"/ai/insights/77"}'
    ),
    ("notification", "marketplace-notification"): (
        '{"type":"marketplace-notification","userId":"$B","connectionId":"$A",'
        '"action":"accepted","companyName":"Clear Vision Labs Ltd"}'
    ),
    ("notification", "urgent-notification-email"): (
        '{"type":"urgent-notification-email","notificationId":"$A"}'
    ),
    ("ai", "daily-briefing"): (
        '{"type":"daily-briefing","companyId":"42","date":"2026-11-03","userIds":null}'
    ),
    ("ai", "demand-forecast"): (
        '{"type":"demand-forecast","companyId":"42","forecastDays":90,"productIds":["p-1","p-2"]}'
    ),
    ("ai", "anomaly-detection"): (
        '{"type":"anomaly-detection","companyId":"42","metricType":"orders","timeRange":"weekly"}'
    ),
    ("ai", "insight-generation"): (
        '{"type":"insight-generation","companyId":"42","insightType":"patient-care",'
        '"periodStart":"2026-10-01","periodEnd":"2026-10-31"}'
    ),
    ("ai", "chat-response"): (
        '{"type":"chat-response","userId":"$B","companyId":"42","conversationId":"$A",'
        '"message":"Which lenses sold best last week?"}'
    ),
    ("oma", "process-oma-file"): '{"type":"process-oma-file","orderId":"$A","fileId":"file:9"}',
    (
        "scheduled",
        "run-schedule",
    ): '{"type":"run-schedule","scheduleId":"briefing:42","manual":false}',
    ("scheduled", "cleanup-expired-data"): '{"type":"cleanup-expired-data","olderThanDays":90}',
}
TS_PAYLOADS: dict[tuple[str, str], dict[str, Any]] = {
    key: json.loads(text.replace("$A", UUID_A).replace("$B", UUID_B))
    for key, text in TS_JSON.items()
}

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
valid_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ID_ALPHABET),
    st.text(alphabet=ID_ALPHABET + "_.:-", max_size=63),
)
PROBLEM = re.compile(r"^[A-Za-z]+(\[\d+\])?: \S.*$|^payload: \S.*$")


@pytest.fixture(scope="module")
def types() -> JobTypes:
    return default_job_types()


def dump(payload: BaseModel) -> dict[str, Any]:
    return payload.model_dump(mode="json", by_alias=True)


def with_field(key: tuple[str, str], field: str, value: object) -> dict[str, Any]:
    data = dict(TS_PAYLOADS[key])
    data[field] = value
    return data


def assert_rejected(
    types: JobTypes, key: tuple[str, str], data: object, field: str, secret: str | None
) -> InvalidPayloadError:
    """The payload is refused, the problem names ``field`` and never shows ``secret``."""
    with pytest.raises(InvalidPayloadError) as info:
        validate_payload(types.get(*key), data)  # type: ignore[arg-type]
    exc = info.value
    assert (exc.queue, exc.name) == key
    assert any(p.startswith(f"{field}: ") or p.startswith(f"{field}[") for p in exc.problems), (
        exc.problems
    )
    assert all(PROBLEM.match(p) for p in exc.problems), exc.problems
    if secret is not None:
        assert secret not in str(exc)
        assert secret not in repr(exc.problems)
    # The pydantic error quotes the input: it must not ride along as cause or context.
    assert exc.__cause__ is None
    assert exc.__context__ is None
    return exc


# -- the catalogue --------------------------------------------------------------------


def test_catalogue_is_exactly_jobs_md(types: JobTypes) -> None:
    got = {(jt.queue, jt.name): (jt.priority, jt.attempts) for jt in types}
    want = {key: (priority, attempts) for key, (_, priority, attempts) in JOBS_MD.items()}
    assert got == want
    assert len(types) == 25


def test_for_queue_lists_the_queue_types_in_jobs_md_order(types: JobTypes) -> None:
    assert [jt.name for jt in types.for_queue("pdf")] == [
        "order-sheet",
        "invoice",
        "receipt",
        "lab-work-ticket",
        "examination-form",
    ]
    assert [jt.name for jt in types.for_queue("oma")] == ["process-oma-file"]
    assert len(types.for_queue("email")) == 6
    assert [jt.name for jt in types.for_queue("scheduled")] == [
        "run-schedule",
        "cleanup-expired-data",
    ]


def test_same_job_name_on_two_queues_has_two_models(types: JobTypes) -> None:
    email = types.get("email", "daily-briefing")
    ai = types.get("ai", "daily-briefing")
    assert email.model is not ai.model
    assert (email.priority, ai.priority) == (5, 3)


@pytest.mark.parametrize(
    ("queue", "name"),
    [("pdf", "order-confirmation"), ("email", "invoice"), ("nope", "invoice"), ("pdf", "")],
)
def test_get_unknown_job_type_raises(types: JobTypes, queue: str, name: str) -> None:
    with pytest.raises(UnknownJobTypeError) as info:
        types.get(queue, name)
    assert (info.value.queue, info.value.name) == (queue, name)


def test_each_call_builds_a_new_registry_and_with_types_copies() -> None:
    first, second = default_job_types(), default_job_types()
    assert first is not second
    extra = JobType("scheduled", "order-sheet", OrderSheetPdf, 4)
    grown = first.with_types([extra])
    assert grown.get("scheduled", "order-sheet") is extra
    assert ("scheduled", "order-sheet") not in first
    assert len(grown) == len(first) + 1
    with pytest.raises(ConfigurationError):
        grown.with_types([extra])


def test_job_type_refuses_a_model_of_another_job() -> None:
    with pytest.raises(ConfigurationError):
        JobType("pdf", "invoice", OrderSheetPdf, 1)
    with pytest.raises(ConfigurationError):
        JobType("pdf", "invoice", InvoicePdf, 0)


@pytest.mark.parametrize(
    ("priority", "expected"), [("urgent", 1), ("high", 2), ("medium", 3), ("low", 4)]
)
def test_system_notification_priority_follows_its_payload(
    types: JobTypes, priority: str, expected: int
) -> None:
    jt = types.get("notification", "system-notification")
    key = ("notification", "system-notification")
    payload = validate_payload(jt, with_field(key, "priority", priority))
    assert jt.priority_for(payload) == expected


def test_other_types_use_their_own_priority(types: JobTypes) -> None:
    jt = types.get("pdf", "invoice")
    assert jt.priority_for(validate_payload(jt, TS_PAYLOADS[("pdf", "invoice")])) == 1


# -- TypeScript compatibility ---------------------------------------------------------


@pytest.mark.parametrize("key", list(TS_PAYLOADS), ids="/".join)
def test_typescript_payload_validates_and_serialises_back_unchanged(
    types: JobTypes, key: tuple[str, str]
) -> None:
    sent = TS_PAYLOADS[key]
    assert list(sent) == JOBS_MD[key][0], "test data out of step with jobs.md"
    out = dump(validate_payload(types.get(*key), sent))
    assert out == sent
    assert list(out) == JOBS_MD[key][0]
    assert out["type"] == key[1]
    # Byte for byte what JSON.stringify produced: same keys, same order, same nulls.
    wire = TS_JSON[key].replace("$A", UUID_A).replace("$B", UUID_B)
    assert json.dumps(out, separators=(",", ":"), ensure_ascii=False) == wire


@pytest.mark.parametrize("key", list(TS_PAYLOADS), ids="/".join)
def test_type_may_be_omitted_but_not_wrong(types: JobTypes, key: tuple[str, str]) -> None:
    data = {k: v for k, v in TS_PAYLOADS[key].items() if k != "type"}
    assert dump(validate_payload(types.get(*key), data))["type"] == key[1]
    assert_rejected(types, key, with_field(key, "type", "other-job"), "type", "other-job")


# fmt: off
OMITTED_OPTIONALS: list[tuple[tuple[str, str], dict[str, Any], dict[str, Any]]] = [
    (("email", "order-shipment"), {"orderId": "o1", "userId": "u1", "trackingNumber": "T1"},
     {"carrier": None}),
    (("notification", "system-notification"), {"userId": "u1", "title": "t", "message": "m"},
     {"priority": "medium", "actionUrl": None}),
    (("notification", "ai-insight-notification"),
     {"userId": "u1", "insightType": "anomaly", "title": "t", "summary": "s"},
     {"detailUrl": None}),
    (("ai", "daily-briefing"), {"companyId": "c1", "date": "2026-01-31"}, {"userIds": None}),
    (("ai", "demand-forecast"), {"companyId": "c1"}, {"forecastDays": 30, "productIds": None}),
    (("ai", "anomaly-detection"), {"companyId": "c1", "metricType": "revenue"},
     {"timeRange": "daily"}),
]
# fmt: on


@pytest.mark.parametrize(("key", "given", "defaults"), OMITTED_OPTIONALS)
def test_omitted_optional_fields_are_sent_with_their_defaults(
    types: JobTypes, key: tuple[str, str], given: dict[str, Any], defaults: dict[str, Any]
) -> None:
    out = dump(validate_payload(types.get(*key), given))
    assert out == {"type": key[1], **given, **defaults}


def test_snake_case_names_are_accepted_and_serialised_as_camel_case(types: JobTypes) -> None:
    jt = types.get("email", "marketplace-connection")
    payload = validate_payload(
        jt, {"connection_id": "c1", "requester_company_id": "r1", "target_company_id": "t1"}
    )
    assert dump(payload) == {
        "type": "marketplace-connection",
        "connectionId": "c1",
        "requesterCompanyId": "r1",
        "targetCompanyId": "t1",
    }


def test_numeric_and_uuid_ids_become_strings(types: JobTypes) -> None:
    jt = types.get("oma", "process-oma-file")
    file_id = uuid.UUID(UUID_A)
    out = dump(validate_payload(jt, {"orderId": 1234, "fileId": file_id}))
    assert out == {"type": "process-oma-file", "orderId": "1234", "fileId": UUID_A}


def test_surrounding_whitespace_is_stripped(types: JobTypes) -> None:
    jt = types.get("email", "general-notification")
    out = dump(validate_payload(jt, {"userId": " u1\n", "subject": "  Hi ", "content": " x "}))
    assert (out["userId"], out["subject"], out["content"]) == ("u1", "Hi", "x")


# -- boundaries that must pass --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        (("email", "general-notification"), "subject", "s" * 200),
        (("email", "general-notification"), "content", "c" * 20_000),
        (("email", "order-shipment"), "trackingNumber", "T" * 64),
        (("email", "order-shipment"), "carrier", "UPS Worldwide Express"),
        (("email", "order-confirmation"), "orderId", "A" * 64),
        (("email", "order-confirmation"), "orderId", "0"),
        (("email", "order-confirmation"), "orderId", "tenant:order_1.v2-x"),
        (("notification", "system-notification"), "message", "m" * 4_000),
        (("notification", "system-notification"), "title", "t" * 200),
        (("notification", "system-notification"), "actionUrl", "/"),
        (("notification", "system-notification"), "actionUrl", "/orders/42?tab=ticket#top"),
        (("notification", "system-notification"), "actionUrl", "https://lab.example.com:8443/x"),
        (("notification", "system-notification"), "actionUrl", "http://example.com"),
        (("notification", "system-notification"), "actionUrl", "/" + "a" * 1999),
        (("notification", "ai-insight-notification"), "summary", "s" * 2_000),
        (("ai", "demand-forecast"), "forecastDays", 1),
        (("ai", "demand-forecast"), "forecastDays", 365),
        (("ai", "demand-forecast"), "productIds", [f"p{i}" for i in range(1000)]),
        (("ai", "demand-forecast"), "productIds", []),
        (("ai", "daily-briefing"), "userIds", [UUID_A, UUID_B]),
        (("ai", "daily-briefing"), "date", "2028-02-29"),
        (("ai", "insight-generation"), "periodEnd", "2026-10-01"),
    ],
)
def test_boundary_values_are_accepted(
    types: JobTypes, key: tuple[str, str], field: str, value: object
) -> None:
    assert dump(validate_payload(types.get(*key), with_field(key, field, value)))[field] == value


# -- bad input ------------------------------------------------------------------------

SECRET = "Jane Doe 1984-02-03"
LONG_SECRET = "Jane-Doe-" + "x" * 300


# fmt: off
BAD_FIELDS: list[tuple[tuple[str, str], str, object, str | None]] = [
    # identifiers
    (("email", "order-confirmation"), "orderId", "", None),
    (("email", "order-confirmation"), "orderId", "   ", None),
    (("email", "order-confirmation"), "userId", SECRET, SECRET),
    (("email", "order-confirmation"), "userId", "-starts-with-dash", "-starts-with-dash"),
    (("email", "order-confirmation"), "userId", "a/b/../c", "a/b/../c"),
    (("email", "order-confirmation"), "orderId", "A" * 65, "A" * 65),
    (("email", "order-confirmation"), "orderId", None, None),
    (("email", "order-confirmation"), "orderId", True, None),
    (("email", "order-confirmation"), "orderId", 1.5, None),
    (("pdf", "invoice"), "invoiceId", "inv\n42", None),
    # enumerations
    (("notification", "system-notification"), "priority", "Jane-critical", "Jane-critical"),
    (("notification", "system-notification"), "priority", "URGENT", "URGENT"),
    (("notification", "ai-insight-notification"), "insightType", "revenue", None),
    (("notification", "marketplace-notification"), "action", "Jane-Doe", "Jane-Doe"),
    (("ai", "anomaly-detection"), "metricType", "Jane-Doe", "Jane-Doe"),
    (("ai", "anomaly-detection"), "timeRange", "hourly", "hourly"),
    (("ai", "insight-generation"), "insightType", "forecast", None),
    # dates
    (("email", "daily-briefing"), "date", "2026-02-30", "2026-02-30"),
    (("email", "daily-briefing"), "date", "2026-13-01", "2026-13-01"),
    (("email", "daily-briefing"), "date", "2027-02-29", "2027-02-29"),
    (("email", "daily-briefing"), "date", "03/11/2026", "03/11/2026"),
    (("email", "daily-briefing"), "date", "20261103", "20261103"),
    (("ai", "daily-briefing"), "date", "2026-11-03T08:00:00", "2026-11-03T08:00:00"),
    (("ai", "daily-briefing"), "date", "Jane-Doe-1984", "Jane-Doe-1984"),
    (("ai", "insight-generation"), "periodEnd", "2026-09-30", "2026-09-30"),
    (("ai", "insight-generation"), "periodStart", "2026-02-31", "2026-02-31"),
    # texts
    (("email", "general-notification"), "subject", LONG_SECRET[:201], LONG_SECRET[:201]),
    (("email", "general-notification"), "subject", "Hi\r\nBcc: x@evil.test", "Bcc: x@"),
    (("email", "general-notification"), "subject", "", None),
    (("email", "general-notification"), "content", LONG_SECRET * 70, LONG_SECRET),
    (("email", "general-notification"), "content", "Jane\x00Doe", "Jane\x00Doe"),
    (("email", "order-shipment"), "trackingNumber", "T" * 65, "T" * 65),
    (("email", "order-shipment"), "carrier", "C" * 65, "C" * 65),
    (("notification", "system-notification"), "title", "t" * 201, "t" * 201),
    (("notification", "system-notification"), "title", " \t ", None),
    (("notification", "system-notification"), "message", "m" * 4_001, "m" * 4_001),
    (("notification", "ai-insight-notification"), "summary", "s" * 2_001, "s" * 2_001),
    (("ai", "chat-response"), "message", LONG_SECRET * 14, LONG_SECRET),
    # links
    (("notification", "system-notification"), "actionUrl", "javascript:alert(1)",
     "javascript:alert(1)"),
    (("notification", "system-notification"), "actionUrl", "//evil.test/x", "evil.test"),
    (("notification", "system-notification"), "actionUrl", "/\\evil.test", "evil.test"),
    (("notification", "system-notification"), "actionUrl", "https://x@evil.test/", "evil.test"),
    (("notification", "system-notification"), "actionUrl", "ftp://files.test/a", "files.test"),
    (("notification", "system-notification"), "actionUrl", "orders/42", "orders/42"),
    (("notification", "system-notification"), "actionUrl", "/a b", None),
    (("notification", "ai-insight-notification"), "detailUrl", "/" + "a" * 2000, "a" * 2000),
    (("notification", "ai-insight-notification"), "detailUrl", "data:text/html,x", "data:text"),
    # numbers and lists
    (("ai", "demand-forecast"), "forecastDays", 0, None),
    (("ai", "demand-forecast"), "forecastDays", 366, None),
    (("ai", "demand-forecast"), "forecastDays", "30", None),
    (("ai", "demand-forecast"), "forecastDays", True, None),
    (("ai", "demand-forecast"), "forecastDays", 7.5, None),
    (("ai", "demand-forecast"), "productIds", ["p1", "Jane Doe"], "Jane Doe"),
    (("ai", "demand-forecast"), "productIds", ["p1", "p2", "p1"], None),
    (("ai", "demand-forecast"), "productIds", [f"p{i}" for i in range(1001)], None),
    (("ai", "demand-forecast"), "productIds", "p1", None),
    (("ai", "daily-briefing"), "userIds", [UUID_A, UUID_A], UUID_A),
]
# fmt: on


@pytest.mark.parametrize(("key", "field", "value", "secret"), BAD_FIELDS)
def test_bad_field_is_refused_without_showing_the_value(
    types: JobTypes, key: tuple[str, str], field: str, value: object, secret: str | None
) -> None:
    assert_rejected(types, key, with_field(key, field, value), field, secret)


ID_FIELDS = [(key, f) for key, (keys, _, _) in JOBS_MD.items() for f in keys if f.endswith("Id")]


@pytest.mark.parametrize(("key", "field"), ID_FIELDS, ids=[f"{k[1]}.{f}" for k, f in ID_FIELDS])
@pytest.mark.parametrize("value", ["", "has space", "x" * 65, "_leading", "é"])
def test_every_id_field_is_checked(
    types: JobTypes, key: tuple[str, str], field: str, value: str
) -> None:
    assert_rejected(types, key, with_field(key, field, value), field, value or None)


def test_impossible_date_has_a_message_of_its_own(types: JobTypes) -> None:
    key = ("email", "daily-briefing")
    exc = assert_rejected(types, key, with_field(key, "date", "2026-02-30"), "date", "2026-02-30")
    assert exc.problems == ["date: must be a real calendar date (YYYY-MM-DD)"]


def test_period_end_before_start_is_reported_on_period_end(types: JobTypes) -> None:
    key = ("ai", "insight-generation")
    data = with_field(key, "periodEnd", "2026-09-30")
    exc = assert_rejected(types, key, data, "periodEnd", "2026-09-30")
    assert exc.problems == ["periodEnd: must not be before periodStart"]


def test_unknown_extra_field_is_refused_by_name_only(types: JobTypes) -> None:
    key = ("pdf", "examination-form")
    data = {**TS_PAYLOADS[key], "patientName": SECRET}
    exc = assert_rejected(types, key, data, "patientName", SECRET)
    assert exc.problems == ["patientName: Extra inputs are not permitted"]


def test_missing_field_is_named(types: JobTypes) -> None:
    key = ("oma", "process-oma-file")
    exc = assert_rejected(types, key, {"orderId": "o1"}, "fileId", None)
    assert exc.problems == ["fileId: Field required"]


def test_problems_use_json_names_even_when_validated_by_python_name(types: JobTypes) -> None:
    key = ("email", "purchase-order")
    exc = assert_rejected(types, key, {"po_id": SECRET, "supplier_id": "s1"}, "poId", SECRET)
    assert len(exc.problems) == 1


def test_every_problem_is_listed(types: JobTypes) -> None:
    key = ("ai", "insight-generation")
    data = {"companyId": "", "insightType": "x", "periodStart": "bad", "periodEnd": "2026-01-01"}
    exc = assert_rejected(types, key, data, "companyId", None)
    assert [p.split(":")[0] for p in exc.problems] == ["companyId", "insightType", "periodStart"]


@pytest.mark.parametrize("data", [["orderId"], "orderId", None, 42])
def test_payload_that_is_not_an_object_is_refused(types: JobTypes, data: object) -> None:
    exc = assert_rejected(types, ("pdf", "order-sheet"), data, "payload", None)
    assert len(exc.problems) == 1


def test_python_dates_are_accepted_and_datetimes_refused(types: JobTypes) -> None:
    jt = types.get("ai", "insight-generation")
    data = {
        "companyId": "c",
        "insightType": "revenue",
        "periodStart": dt.date(2026, 1, 1),
        "periodEnd": dt.date(2026, 1, 31),
    }
    out = dump(validate_payload(jt, data))
    assert (out["periodStart"], out["periodEnd"]) == ("2026-01-01", "2026-01-31")
    data["periodEnd"] = dt.datetime(2026, 1, 31, 8, 0, tzinfo=dt.UTC)
    assert_rejected(types, ("ai", "insight-generation"), data, "periodEnd", None)


# -- properties -----------------------------------------------------------------------

ID_KEYS = {key: [field for field in JOBS_MD[key][0] if field.endswith("Id")] for key in JOBS_MD}


@given(key=st.sampled_from(sorted(k for k, ids in ID_KEYS.items() if ids)), ident=valid_ids)
def test_any_valid_id_round_trips_through_payload_json(
    types: JobTypes, key: tuple[str, str], ident: str
) -> None:
    data = dict(TS_PAYLOADS[key])
    for field in ID_KEYS[key]:
        data[field] = ident
    jt = types.get(*key)
    wire = json.dumps(dump(validate_payload(jt, data)))
    back = dump(validate_payload(jt, json.loads(wire)))
    assert back == data
    assert all(back[field] == ident for field in ID_KEYS[key])


@given(
    prefix=valid_ids,
    bad=st.characters(exclude_characters=ID_ALPHABET + "_.:-", exclude_categories=["Cs"]),
)
def test_an_id_with_any_other_character_is_refused(types: JobTypes, prefix: str, bad: str) -> None:
    ident = prefix[:60] + bad + "zz"
    key = ("pdf", "invoice")
    assert_rejected(types, key, with_field(key, "invoiceId", ident), "invoiceId", None)


@given(day=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_any_calendar_date_round_trips_as_iso_string(types: JobTypes, day: dt.date) -> None:
    key = ("email", "daily-briefing")
    jt = types.get(*key)
    out = dump(validate_payload(jt, with_field(key, "date", day.isoformat())))
    assert out["date"] == day.isoformat()
    assert dump(validate_payload(jt, with_field(key, "date", day)))["date"] == day.isoformat()


def test_replacing_a_default_is_possible_without_touching_the_catalogue(types: JobTypes) -> None:
    # A deployment can build its own registry from the defaults (no module global).
    slower = JobTypes(
        replace(jt, attempts=4) if jt.queue == "pdf" else jt for jt in default_job_types()
    )
    assert slower.get("pdf", "invoice").attempts == 4
    assert types.get("pdf", "invoice").attempts is None
