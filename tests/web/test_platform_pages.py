"""``/orders/{id}``, ``/invoices/{id}``, ``/purchase-orders/{id}``,
``/marketplace/connections``: the pages e-mails link to (issue 22).

Documents are made with the real generator on the app's database and storage; the
pages are then fetched as each side would, signed out, and from another company.
"""

from __future__ import annotations

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.domain.content import OrderTracing, TracingStatus, UploadedFile
from ils.domain.orders import OrderStatus, OrderStatusChange
from ils.domain.supply import (
    Product,
    ProductCategory,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
)
from ils.web.dashboard.pages import safe_next
from ils.web.state import WebState
from ils.workers.pdf.generate import (
    DocumentGenerator,
    generate_invoice,
    generate_lab_work_ticket,
    generate_order_sheet,
)
from ils.workers.pdf.pool import InlineRenderer
from tests.web.conftest import Factory, SignedIn
from tests.workers.pdf_support import (
    INVOICE_NUMBER,
    ORDER_NUMBER,
    PATIENT_LAST,
    Records,
    build_records,
)


async def order_with_documents(state: WebState, factory: Factory) -> tuple[Records, str, str]:
    """The records' order with one status change, its order sheet (practice's) and
    work ticket (lab's); the two documents' ids."""
    records = await build_records(state.sessions)
    await factory.add(
        OrderStatusChange(
            order_id=records.order.id,
            from_status=OrderStatus.SUBMITTED,
            to_status=OrderStatus.ACCEPTED,
            note="Looks good",
        )
    )
    generator = DocumentGenerator.for_context(
        state.system.worker_context(), renderer=InlineRenderer()
    )
    sheet = await generate_order_sheet(generator, records.order.id)
    ticket = await generate_lab_work_ticket(generator, records.order.id)
    return records, sheet.id, ticket.id


async def test_signed_out_goes_through_sign_in(
    state: WebState, factory: Factory, client: httpx.AsyncClient
) -> None:
    records = await build_records(state.sessions)
    response = await client.get(f"/orders/{records.order.id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/sign-in?next=%2Forders%2F{records.order.id}"
    page = await client.get(response.headers["location"])
    assert f'data-next="/orders/{records.order.id}"' in page.text


async def test_practice_sees_status_history_and_its_documents(
    state: WebState, factory: Factory, signed_in: SignedIn
) -> None:
    records, sheet_id, ticket_id = await order_with_documents(state, factory)
    client, _ = await signed_in(Role.STAFF, company=records.practice)
    response = await client.get(f"/orders/{records.order.id}")
    assert response.status_code == 200
    html = response.text
    assert ORDER_NUMBER in html
    assert "accepted" in html and "Looks good" in html
    assert f'href="/api/documents/{sheet_id}"' in html
    # The lab's work ticket is the lab's document, not the practice's.
    assert ticket_id not in html
    assert PATIENT_LAST not in html
    download = await client.get(f"/api/documents/{sheet_id}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"


async def test_lab_user_sees_an_order_placed_with_the_lab(
    state: WebState, factory: Factory, signed_in: SignedIn
) -> None:
    records, sheet_id, ticket_id = await order_with_documents(state, factory)
    client, _ = await signed_in(Role.LAB_TECH, company=records.lab)
    response = await client.get(f"/orders/{records.order.id}")
    assert response.status_code == 200
    assert f'href="/api/documents/{ticket_id}"' in response.text
    assert sheet_id not in response.text
    assert "No tracing file processed" in response.text


async def test_the_newest_tracing_and_its_findings_are_shown(
    state: WebState, factory: Factory, signed_in: SignedIn
) -> None:
    records = await build_records(state.sessions)
    upload = UploadedFile(
        company_id=records.practice.id,
        order_id=records.order.id,
        filename="frame.oma",
        content_type="text/plain",
        size_bytes=10,
        sha256="0" * 64,
        path="uploads/frame.oma",
    )
    await factory.add(upload)
    finding = {"severity": "warning", "code": "ED_LARGE", "message": "<b>ED</b> over 60 mm"}
    await factory.add(
        OrderTracing(
            order_id=records.order.id,
            file_id=upload.id,
            status=TracingStatus.WARNINGS,
            findings=[finding],
        )
    )
    client, _ = await signed_in(Role.STAFF, company=records.lab)
    html = (await client.get(f"/orders/{records.order.id}")).text
    assert "warnings" in html and "ED_LARGE" in html
    # Findings come from an uploaded file: shown as text, never as markup.
    assert "&lt;b&gt;ED&lt;/b&gt; over 60 mm" in html and "<b>ED</b>" not in html


async def test_another_company_gets_404(
    state: WebState, factory: Factory, signed_in: SignedIn
) -> None:
    records, _, _ = await order_with_documents(state, factory)
    for kind in (CompanyKind.PRACTICE, CompanyKind.LAB):
        client, _ = await signed_in(Role.ADMIN, kind)
        response = await client.get(f"/orders/{records.order.id}")
        assert response.status_code == 404
        assert ORDER_NUMBER not in response.text
        assert "text/html" in response.headers["content-type"]
    missing = await client.get("/orders/no-such-order")
    assert missing.status_code == 404


async def test_lab_and_supplier_see_the_purchase_order(
    factory: Factory, signed_in: SignedIn
) -> None:
    lab = await factory.company(CompanyKind.LAB)
    supplier = await factory.company(CompanyKind.SUPPLIER, name="Lens Blanks Ltd")
    product = Product(
        company_id=supplier.id,
        sku="BLK-160",
        name="1.60 blank",
        category=ProductCategory.LENS_BLANK,
        unit_price_cents=1250,
    )
    await factory.add(product)
    po = PurchaseOrder(
        number="PO-2026-00007",
        company_id=lab.id,
        supplier_id=supplier.id,
        status=PurchaseOrderStatus.SENT,
    )
    await factory.add(po)
    await factory.add(
        PurchaseOrderLine(
            purchase_order_id=po.id, product_id=product.id, quantity=4, unit_price_cents=1250
        )
    )
    for company in (lab, supplier):
        client, _ = await signed_in(Role.STAFF, company=company)
        response = await client.get(f"/purchase-orders/{po.id}")
        assert response.status_code == 200
        assert "PO-2026-00007" in response.text and "BLK-160" in response.text
        assert "50.00" in response.text and "sent" in response.text
    stranger, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert (await stranger.get(f"/purchase-orders/{po.id}")).status_code == 404
    technician, _ = await signed_in(Role.LAB_TECH, company=lab)
    refused = await technician.get(f"/purchase-orders/{po.id}")
    assert refused.status_code == 403 and "PO-2026-00007" not in refused.text


async def test_purchase_order_and_connections_pages(
    signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    lab_client, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert (await lab_client.get("/purchase-orders/unknown")).status_code == 404
    page = await lab_client.get("/marketplace/connections")
    assert page.status_code == 200
    assert "no connections yet" in page.text
    signed_out = await client.get("/purchase-orders/abc")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].endswith("next=%2Fpurchase-orders%2Fabc")


async def test_issuer_and_customer_see_the_invoice_with_its_pdf(
    state: WebState, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    """The invoice page: net unit prices, VAT rate names, totals, the payment, the
    balance and the PDF; the order it bills is linked. Billing roles of the issuing lab
    and the invoiced practice only; anyone else gets 404, a lab_tech 403."""
    records = await build_records(state.sessions)
    invoice_id = records.invoice.id
    generator = DocumentGenerator.for_context(
        state.system.worker_context(), renderer=InlineRenderer()
    )
    pdf = await generate_invoice(generator, invoice_id)
    signed_out = await client.get(f"/invoices/{invoice_id}")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].endswith(f"next=%2Finvoices%2F{invoice_id}")
    for company in (records.lab, records.practice):
        reader, _ = await signed_in(Role.STAFF, company=company)
        response = await reader.get(f"/invoices/{invoice_id}")
        assert response.status_code == 200
        html = response.text
        assert INVOICE_NUMBER in html
        assert "Unit price (excl. VAT)" in html and "£12.50" in html
        assert "Standard rate 20%" in html and "Exempt" in html
        # 98.00 + 2 x 12.50 at 20 % and 35.00 exempt; 100.00 paid.
        assert "£158.00" in html and "£24.60" in html and "£182.60" in html
        assert "BACS 7781" in html and "£82.60" in html
        assert f'href="/orders/{records.order.id}"' in html and ORDER_NUMBER in html
        if company is records.lab:
            assert f'href="/api/documents/{pdf.id}"' in html
    stranger, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE)
    missing = await stranger.get(f"/invoices/{invoice_id}")
    assert missing.status_code == 404 and INVOICE_NUMBER not in missing.text
    technician, _ = await signed_in(Role.LAB_TECH, company=records.lab)
    refused = await technician.get(f"/invoices/{invoice_id}")
    assert refused.status_code == 403 and INVOICE_NUMBER not in refused.text


async def test_the_header_shows_the_dashboard_to_managers_only(
    state: WebState, signed_in: SignedIn
) -> None:
    """Staff reach the e-mail pages but not the dashboard: their header has no links
    to pages that would refuse them, and the brand leads home instead."""
    records = await build_records(state.sessions)
    staff, _ = await signed_in(Role.STAFF, company=records.practice)
    html = (await staff.get(f"/orders/{records.order.id}")).text
    assert 'href="/admin/queues"' not in html and 'href="/admin/audit"' not in html
    assert 'class="brand" href="/"' in html
    admin, _ = await signed_in(Role.ADMIN, company=records.practice)
    html = (await admin.get(f"/orders/{records.order.id}")).text
    assert 'href="/admin/queues"' in html and 'href="/admin/audit"' in html


def test_next_may_lead_to_the_e_mail_pages_only() -> None:
    assert safe_next("/invoices/abc") == "/invoices/abc"
    assert safe_next("/orders/abc") == "/orders/abc"
    assert safe_next("/purchase-orders/abc") == "/purchase-orders/abc"
    assert safe_next("/marketplace/connections") == "/marketplace/connections"
    assert safe_next("/") == "/"
    assert safe_next("//evil.example") == "/admin/queues"
    assert safe_next("/orders/\\evil") == "/admin/queues"
