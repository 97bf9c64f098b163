"""The admin dashboard in a real browser: Debian's Chromium, driven by Playwright,
against a real ``ils serve`` process.

Why this shape: what matters here happens in the browser — the script refreshing
counts without a reload, the confirm dialogs, the CSRF header on actions, the
Content-Security-Policy letting the page's own script run and nothing else — so an
ASGI client cannot test it. The server runs without workers; this test process opens
a job system on the same database and runs the pdf queue with a handler of its own, so
it decides which jobs complete and which fail.

Chromium is the system's (``apt-get install -y chromium``; ``.ci/run`` installs it), not
one downloaded by ``playwright install``. Without it the tests skip on a developer
machine and fail under CI (``CI=true``). Screenshots go to ``$ILS_SCREENSHOT_DIR`` or
``var/screenshots/`` of the repository.
"""

from __future__ import annotations

import pytest
from playwright.async_api import (
    Dialog,
    expect,
)

from ils.jobs.model import JobState
from tests.web.browser import (
    EMAIL,
    HOSTILE,
    PASSWORD,
    Site,
    open_tab,
    screenshot_dir,
    sign_in,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_sign_in_through_the_sign_in_page(site: Site) -> None:
    tab = await open_tab(site)
    page = tab.page
    await page.goto("/admin/queues")
    await page.wait_for_url("**/admin/sign-in?next=%2Fadmin%2Fqueues")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("[data-sign-in-error]")).to_have_text("Wrong e-mail or password.")
    assert page.url.endswith("/admin/sign-in?next=%2Fadmin%2Fqueues")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/admin/queues")
    await expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()
    await expect(page.locator(".who .user")).to_contain_text(EMAIL)
    # Signing out ends the session: the dashboard sends the browser back to sign in.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/admin/sign-in")
    await page.goto("/admin/audit")
    await page.wait_for_url("**/admin/sign-in?next=%2Fadmin%2Faudit")
    # The browser logs the wrong password's 401 answer; that one is expected.
    tab.assert_clean("401 (Unauthorized)")
    await tab.context.close()


async def test_counts_change_on_the_overview_while_jobs_complete(site: Site) -> None:
    tab = await open_tab(site)
    page = tab.page
    await sign_in(page)
    completed = page.locator('[data-queue="pdf"] [data-field="pdf.completed"]')
    before = int(await completed.inner_text())
    # A reload would drop this: it proves the numbers change in place.
    await page.evaluate("window.stillTheSamePage = true")
    jobs = 6
    for n in range(jobs):
        await site.enqueue(f"order-{n}")
    await expect(completed).to_have_text(str(before + jobs))
    assert await page.evaluate("window.stillTheSamePage === true")
    await expect(page.locator("[data-updated]")).to_contain_text("updated")
    # The chart follows the counts: every one of those jobs finished within the hour.
    chart = page.locator('[data-queue="pdf"] figure.chart')
    await expect(chart).to_have_attribute("data-completed", str(before + jobs))
    await expect(chart.locator("svg rect.completed").first).to_be_visible()
    await expect(page.locator('[data-field="stores.local.reachable"]')).to_have_text("yes")
    await expect(page.locator('[data-field="mode"]')).to_have_text("local")
    directory = screenshot_dir()
    laptop = directory / "dashboard-overview.png"
    await page.screenshot(path=str(laptop), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    phone = directory / "dashboard-overview-phone.png"
    await page.screenshot(path=str(phone), full_page=True)
    # Nothing sticks out sideways on a phone.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    print(f"\nscreenshots: {laptop} {phone}")
    tab.assert_clean()
    await tab.context.close()


async def test_retry_a_failed_job_and_find_it_in_the_audit_log(site: Site) -> None:
    job_id = await site.enqueue("flaky-1")
    await site.wait_state(job_id, JobState.FAILED)
    tab = await open_tab(site)
    page = tab.page
    await sign_in(page)
    # Overview → the pdf queue's failed jobs → the job.
    await page.locator('[data-queue="pdf"]').get_by_role("link", name="failed").click()
    await page.wait_for_url("**/admin/queues/pdf?state=failed")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row.locator(".reason")).to_have_text(HOSTILE)
    listing = screenshot_dir() / "dashboard-queue-failed.png"
    await page.screenshot(path=str(listing), full_page=True)
    await row.get_by_role("link", name=job_id).click()
    await page.wait_for_url(f"**/admin/queues/pdf/jobs/{job_id}")
    # The reason is markup, and shows as text: no alert ran, nothing was injected.
    await expect(page.locator("[data-failed-reason]")).to_have_text(HOSTILE)
    await expect(page.locator("[data-job-state]")).to_have_text("failed")
    await expect(page.get_by_text("looked up the order")).to_be_visible()
    # A company admin reads why it failed, not the server's stack trace (issue 23).
    await expect(page.get_by_text("PermanentJobError")).to_have_count(0)
    shot = screenshot_dir() / "dashboard-job.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshots: {listing} {shot}")

    dialogs: list[str] = []
    answer = {"accept": False}

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await (dialog.accept() if answer["accept"] else dialog.dismiss())

    page.on("dialog", on_dialog)
    retry = page.get_by_role("button", name="Retry")
    # Saying no to the confirmation does nothing.
    await retry.click()
    await page.wait_for_timeout(300)
    assert len(dialogs) == 1
    job = await site.system.local.get_job("pdf", job_id)
    assert job is not None and job.state is JobState.FAILED
    # Saying yes retries it (the POST carries the CSRF token, or it would be refused).
    answer["accept"] = True
    await retry.click()
    await expect(page.locator("#flash")).to_have_text("Job retried.")
    assert dialogs == [f"confirm: Retry job {job_id}?"] * 2
    await site.wait_state(job_id, JobState.COMPLETED)
    await page.reload()
    await expect(page.locator("[data-job-state]")).to_have_text("completed")

    await page.get_by_role("link", name="Audit log").click()
    await page.wait_for_url("**/admin/audit")
    entry = page.locator('tr[data-audit-action="retry"]').filter(has_text=job_id)
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(EMAIL)
    await expect(entry).to_contain_text("pdf")
    audit = screenshot_dir() / "dashboard-audit.png"
    await page.screenshot(path=str(audit), full_page=True)
    print(f"screenshot: {audit}")
    tab.assert_clean()
    await tab.context.close()


async def test_bulk_retry_of_the_selected_failed_jobs(site: Site) -> None:
    job_ids = [await site.enqueue(f"flaky-bulk-{n}") for n in range(2)]
    for job_id in job_ids:
        await site.wait_state(job_id, JobState.FAILED)
    tab = await open_tab(site)
    page = tab.page
    await sign_in(page, "/admin/queues/pdf?state=failed")
    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    # Nothing selected: the page says so and sends nothing.
    await page.get_by_role("button", name="Retry selected").click()
    await expect(page.locator("#flash")).to_have_text("Select one or more jobs first.")
    assert dialogs == []
    await page.get_by_label("Select every job on this page").check()
    await page.get_by_role("button", name="Retry selected").click()
    await expect(page.locator("#flash")).to_have_text("Retried: 2 job(s).")
    assert dialogs == ["Retry the selected jobs? (2 selected)"]
    for job_id in job_ids:
        await site.wait_state(job_id, JobState.COMPLETED)
    tab.assert_clean()
    await tab.context.close()
