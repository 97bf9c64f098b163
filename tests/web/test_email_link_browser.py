"""An e-mail's link, followed in a real browser (issue 22).

The order-confirmation handler runs here against the site's database; with no SMTP
server configured it writes an ``.eml`` file. The link is read from that file, opened
signed out, and the sign-in page must bring the reader back to the order page with
its documents; a user of another company gets the 404 page on the same link.
"""

from __future__ import annotations

import dataclasses
import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import expect
from sqlalchemy import update

from ils.db.engine import session_factory
from ils.domain.companies import User
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry
from ils.workers import email as email_worker
from ils.workers.pdf.generate import DocumentGenerator, generate_order_sheet
from ils.workers.pdf.pool import InlineRenderer
from tests.web.browser import EMAIL, PASSWORD, Site, open_tab, screenshot_dir
from tests.workers.pdf_support import ORDER_NUMBER, build_records
from tests.workers.support import FakeContext

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRACTICE_PASSWORD = "another long passphrase"


def eml_link(path: Path, base: str) -> str:
    """The first link to ``base`` in the message's plain-text body."""
    with open(path, "rb") as handle:
        message = email.message_from_binary_file(handle, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(re.escape(base) + r"/orders/[^\s<>\"]+", body.get_content())
    assert found is not None, body.get_content()
    return found.group(0)


async def write_confirmation(site: Site) -> tuple[str, str, str]:
    """An order with its order sheet, and its confirmation e-mail written as ``.eml``
    by the real handler; (link, practice user's e-mail, document id)."""
    sessions = session_factory(site.system.engine)
    records = await build_records(sessions)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PRACTICE_PASSWORD)
    async with sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == records.practice_user.id).values(password_hash=hashed)
        )
    generator = DocumentGenerator.for_context(
        site.system.worker_context(), renderer=InlineRenderer()
    )
    sheet = await generate_order_sheet(generator, records.order.id)
    # Links point at the server under test (the handler builds them from public_url).
    settings = site.system.settings.model_copy(update={"public_url": site.base})
    context = dataclasses.replace(site.system.worker_context(), settings=settings)
    worker = email_worker.register(HandlerRegistry(site.system.job_types), context)
    try:
        payload = OrderConfirmationEmail(
            order_id=records.order.id, user_id=records.practice_user.id
        )
        await worker.order_confirmation(payload, FakeContext("link-job-1"))
    finally:
        await worker.close()
    (path,) = (settings.data_dir / "mail").glob("*order-confirmation*.eml")
    link = eml_link(path, site.base)
    assert link == f"{site.base}/orders/{records.order.id}"
    return link, records.practice_user.email, sheet.id


async def test_the_link_leads_through_sign_in_to_the_order(site: Site) -> None:
    link, practice_email, sheet_id = await write_confirmation(site)

    tab = await open_tab(site, width=1280, height=900)
    page = tab.page
    await page.goto(link)
    await page.wait_for_url("**/admin/sign-in?next=*")
    await page.get_by_label("E-mail").fill(practice_email)
    await page.get_by_label("Password").fill(PRACTICE_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(link)
    await expect(page.get_by_role("heading", name=f"Order {ORDER_NUMBER}")).to_be_visible()
    await expect(page.locator("[data-status]")).to_have_text("accepted")
    download = page.locator(f'a[href="/api/documents/{sheet_id}"]')
    await expect(download).to_be_visible()
    await page.screenshot(path=str(screenshot_dir() / "email-link-order.png"), full_page=True)
    async with page.expect_download() as waiting:
        await download.click()
    pdf = await (await waiting.value).path()
    assert pdf.read_bytes().startswith(b"%PDF")
    tab.assert_clean()
    await tab.context.close()

    # The seeded lab admin belongs to another company: the same link is a 404 page.
    other = await open_tab(site)
    await other.page.goto(link)
    await other.page.wait_for_url("**/admin/sign-in?next=*")
    await other.page.get_by_label("E-mail").fill(EMAIL)
    await other.page.get_by_label("Password").fill(PASSWORD)
    await other.page.get_by_role("button", name="Sign in").click()
    await other.page.wait_for_url(link)
    response = await other.page.reload()
    assert response is not None and response.status == 404
    await expect(other.page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(other.page.get_by_text(ORDER_NUMBER)).to_have_count(0)
    await other.context.close()
