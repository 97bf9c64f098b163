"""``/api/documents``: download for the owning company only; versions of a subject.

Documents are made with the real generator (rendering inline) on the app's own
database and storage, then fetched through the API on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.web.state import WebState
from ils.workers.pdf.generate import (
    DocumentGenerator,
    generate_examination_form,
    generate_invoice,
    generate_lab_work_ticket,
    generate_order_sheet,
)
from ils.workers.pdf.pool import InlineRenderer
from tests.web.conftest import Factory, SignedIn
from tests.workers.pdf_support import INVOICE_NUMBER, Records, build_records, pdf_text


async def setup(state: WebState) -> tuple[DocumentGenerator, Records]:
    generator = DocumentGenerator.for_context(
        state.system.worker_context(), renderer=InlineRenderer()
    )
    return generator, await build_records(state.sessions)


async def test_owner_downloads_the_pdf(state: WebState, signed_in: SignedIn) -> None:
    generator, records = await setup(state)
    document = await generate_invoice(generator, records.invoice.id)
    client, _ = await signed_in(Role.STAFF, company=records.lab)
    response = await client.get(f"/api/documents/{document.id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="invoice-{INVOICE_NUMBER}-v1.pdf"'
    )
    assert response.headers["cache-control"] == "private, no-store"
    assert hashlib.sha256(response.content).hexdigest() == document.sha256
    assert INVOICE_NUMBER in pdf_text(response.content)


async def test_no_session_is_401(state: WebState, client: httpx.AsyncClient) -> None:
    generator, records = await setup(state)
    document = await generate_invoice(generator, records.invoice.id)
    response = await client.get(f"/api/documents/{document.id}")
    assert response.status_code == 401


async def test_another_company_gets_404(
    state: WebState, signed_in: SignedIn, factory: Factory
) -> None:
    generator, records = await setup(state)
    invoice = await generate_invoice(generator, records.invoice.id)  # the lab's
    sheet = await generate_order_sheet(generator, records.order.id)  # the practice's
    stranger, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    for document in (invoice, sheet):
        response = await stranger.get(f"/api/documents/{document.id}")
        assert response.status_code == 404
        assert response.json() == {"detail": "not found"}
    # The customer is not the owner of the lab's invoice document either.
    practice, _ = await signed_in(Role.ADMIN, company=records.practice)
    assert (await practice.get(f"/api/documents/{invoice.id}")).status_code == 404
    assert (await practice.get(f"/api/documents/{sheet.id}")).status_code == 200
    assert (await practice.get("/api/documents/" + "0" * 32)).status_code == 404


async def test_examination_forms_are_not_for_lab_tech(state: WebState, signed_in: SignedIn) -> None:
    generator, records = await setup(state)
    form = await generate_examination_form(generator, records.examination.id)
    staff, _ = await signed_in(Role.STAFF, company=records.practice)
    tech, _ = await signed_in(Role.LAB_TECH, company=records.practice)
    assert (await staff.get(f"/api/documents/{form.id}")).status_code == 200
    assert (await tech.get(f"/api/documents/{form.id}")).status_code == 403
    listed = await tech.get("/api/documents", params={"subject": records.examination.id})
    assert listed.json() == []


async def test_a_changed_file_is_not_served(state: WebState, signed_in: SignedIn) -> None:
    generator, records = await setup(state)
    document = await generate_lab_work_ticket(generator, records.order.id)
    path = state.settings.documents_dir / document.path
    path.write_bytes(path.read_bytes().replace(b"ORD-", b"XXX-"))
    client, _ = await signed_in(Role.STAFF, company=records.lab)
    assert (await client.get(f"/api/documents/{document.id}")).status_code == 500
    path.unlink()
    assert (await client.get(f"/api/documents/{document.id}")).status_code == 404


async def test_versions_of_a_subject(state: WebState, signed_in: SignedIn) -> None:
    generator, records = await setup(state)
    await generate_invoice(generator, records.invoice.id)
    await generate_invoice(generator, records.invoice.id)
    await generate_lab_work_ticket(generator, records.order.id)
    client, _ = await signed_in(Role.STAFF, company=records.lab)
    response = await client.get("/api/documents", params={"subject": records.invoice.id})
    assert response.status_code == 200
    body = response.json()
    assert [(d["kind"], d["version"]) for d in body] == [("invoice", 2), ("invoice", 1)]
    assert body[0]["download_url"] == f"/api/documents/{body[0]['id']}"
    assert body[0]["filename"] == f"invoice-{INVOICE_NUMBER}-v2.pdf"
    tickets = await client.get(
        "/api/documents", params={"subject": records.order.id, "kind": "lab_work_ticket"}
    )
    assert [d["version"] for d in tickets.json()] == [1]
    stranger, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert (
        await stranger.get("/api/documents", params={"subject": records.invoice.id})
    ).json() == []
