"""``GET /api/mail``: the sent-mail log for admins, scoped by company, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from ils.domain.companies import Company, CompanyKind, Role
from ils.domain.mail import MailMessage, MailState
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.testing import eventually
from ils.web.state import WebState
from ils.workers import email
from tests.web.api_support import connect, order_body, patient_of, queued
from tests.web.conftest import Factory, SignedIn

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def message(
    sender: Company, recipient_company: Company | None, n: int, **fields: object
) -> MailMessage:
    values: dict[str, object] = {
        "message_id": f"<m{n}-{sender.id[:6]}@ils.example>",
        "job_id": f"job-{n}",
        "queue": "email",
        "job_name": "order-confirmation",
        "slot": f"user:{n}",
        "company_id": sender.id,
        "recipient_company_id": recipient_company.id if recipient_company else None,
        "recipient": f"person{n}@example.com",
        "subject": f"Order ORD-2026-{n:06d} received",
        "state": MailState.SENT,
        "transport": "smtp",
        "attempts": 1,
        "reply": "250 2.0.0 Ok: queued",
        "created_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        "sent_at": T0 + timedelta(minutes=n, seconds=1),
        **fields,
    }
    return MailMessage(**values)


async def test_without_a_session_401_and_for_other_roles_403(
    client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    assert (await client.get("/api/mail")).status_code == 401
    for role in (Role.STAFF, Role.LAB_TECH):
        staff, _ = await signed_in(role, CompanyKind.LAB)
        response = await staff.get("/api/mail")
        assert response.status_code == 403
        assert response.json() == {"detail": "not allowed for your role"}


async def test_company_admins_see_their_companys_mail_platform_admins_all(
    factory: Factory, signed_in: SignedIn
) -> None:
    lab = await factory.company(CompanyKind.LAB, "Clear View Lab")
    practice = await factory.company(CompanyKind.PRACTICE, "Brightside")
    stranger = await factory.company(CompanyKind.LAB, "Other Lab")
    await factory.add(
        message(lab, practice, 1),  # the lab's confirmation to a practice user
        message(lab, None, 2, state=MailState.FAILED, error="550 5.1.1 No such user"),
        message(stranger, None, 3),  # another company's business
        message(practice, lab, 4, job_name="marketplace-connection"),
    )
    for role in (Role.COMPANY_ADMIN, Role.ADMIN):
        client, _ = await signed_in(role, company=lab)
        body = (await client.get("/api/mail")).json()
        assert body["total"] == 3
        assert [item["job_id"] for item in body["items"]] == ["job-4", "job-2", "job-1"]
    practice_admin, _ = await signed_in(Role.COMPANY_ADMIN, company=practice)
    body = (await practice_admin.get("/api/mail")).json()
    assert [item["job_id"] for item in body["items"]] == ["job-4", "job-1"]
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    body = (await platform.get("/api/mail")).json()
    assert [item["job_id"] for item in body["items"]] == ["job-4", "job-3", "job-2", "job-1"]


async def test_the_log_shows_recipient_subject_job_times_and_state_with_paging(
    factory: Factory, signed_in: SignedIn
) -> None:
    lab = await factory.company(CompanyKind.LAB)
    await factory.add(
        *(message(lab, None, n) for n in range(1, 6)),
        message(lab, None, 6, state=MailState.FAILED, error="550 5.1.1 No such user", reply=None),
    )
    client, _ = await signed_in(Role.COMPANY_ADMIN, company=lab)
    page = (await client.get("/api/mail", params={"limit": 2, "offset": 1})).json()
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 1)
    assert [item["job_id"] for item in page["items"]] == ["job-5", "job-4"]
    first = page["items"][0]
    assert first["recipient"] == "person5@example.com"
    assert first["subject"] == "Order ORD-2026-000005 received"
    assert first["state"] == "sent"
    assert first["job_name"] == "order-confirmation"
    assert first["queue"] == "email"
    assert first["message_id"].startswith("<m5-")
    assert datetime.fromisoformat(first["created_at"]) == T0 + timedelta(minutes=5)
    assert datetime.fromisoformat(first["sent_at"]) == T0 + timedelta(minutes=5, seconds=1)
    failed = (await client.get("/api/mail", params={"state": "failed"})).json()
    assert failed["total"] == 1
    assert failed["items"][0]["error"] == "550 5.1.1 No such user"
    one_job = (await client.get("/api/mail", params={"job_id": "job-3"})).json()
    assert [item["job_id"] for item in one_job["items"]] == ["job-3"]
    bad = await client.get("/api/mail", params={"limit": 0})
    assert bad.status_code == 422


async def test_an_order_placed_through_the_api_is_mailed_and_logged(
    factory: Factory, signed_in: SignedIn, state: WebState
) -> None:
    """The whole path on the embedded default: POST /api/orders queues the confirmation
    in its transaction, the real e-mail worker writes it to ``data_dir/mail`` (no SMTP
    host configured), and the practice's admin finds it in the log."""
    lab = await factory.company(CompanyKind.LAB, "Clear View Lab")
    practice = await factory.company(CompanyKind.PRACTICE, "Brightside")
    patient = await patient_of(factory, practice)
    staff, user = await signed_in(Role.STAFF, company=practice)
    await connect(factory, practice, lab)
    created = await staff.post("/api/orders", json=order_body(patient.id, lab.id))
    assert created.status_code == 201, created.text
    (job,) = await queued(state, "email", "order-confirmation")

    system = state.system
    registry = HandlerRegistry(system.job_types)
    worker = email.register(registry, system.worker_context())
    runner = Runner(system.stores(), [system.catalogue["email"]], registry)
    record: JobRecord | None = None

    async def sent() -> bool:
        nonlocal record
        record = await system.local.get_job("email", job.id)
        return record is not None and record.state is JobState.COMPLETED

    runner.start()
    try:
        await eventually(
            sent,
            10.0,
            interval=0.02,
            message=lambda: f"the confirmation job did not complete in 10 s: {record}",
        )
    finally:
        await runner.stop(5)
        await worker.close()
    (path,) = (state.settings.data_dir / "mail").glob("*.eml")

    admin, _ = await signed_in(Role.COMPANY_ADMIN, company=practice)
    (item,) = (await admin.get("/api/mail")).json()["items"]
    number = created.json()["number"]
    assert item["recipient"] == user.email
    assert item["subject"] == f"Order {number} received by Clear View Lab"
    assert (item["job_id"], item["state"], item["transport"]) == (job.id, "sent", "file")
    assert item["reply"] == f"written to {path.name}"  # no server path for a company
    assert item["company_id"] == lab.id and item["recipient_company_id"] == practice.id
    assert number in path.read_text()
