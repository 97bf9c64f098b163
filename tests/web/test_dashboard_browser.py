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

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    async_playwright,
    expect,
)

from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.errors import PermanentJobError
from ils.jobs.job_types import OrderSheetPdf
from ils.jobs.model import JobOptions, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "ada@lab.example"
PASSWORD = "correct horse battery staple"
#: Playwright's wait for one expectation; generous for a loaded CI machine.
WAIT_MS = 15_000
HOSTILE = "<script>alert('owned')</script> order has no lens data"

pytestmark = pytest.mark.asyncio(loop_scope="module")


def chromium_path() -> str:
    """Debian's Chromium; its absence fails a CI run instead of skipping it."""
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (apt-get install -y chromium; see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def screenshot_dir() -> Path:
    directory = Path(os.environ.get("ILS_SCREENSHOT_DIR") or ROOT / "var" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Site:
    """The running server, the test's own job system and the browser."""

    base: str
    system: JobSystem
    browser: Browser
    company_id: str
    failed_once: set[str] = field(default_factory=set)

    async def enqueue(self, order_id: str) -> str:
        model = self.system.job_types.get("pdf", "order-sheet").model
        ref = await self.system.enqueue(
            "pdf",
            "order-sheet",
            model.model_validate({"order_id": order_id}),
            JobOptions(company_id=self.company_id),
        )
        return ref.job_id

    async def wait_state(self, job_id: str, wanted: JobState) -> None:
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            job = await self.system.local.get_job("pdf", job_id)
            if job is not None and job.state is wanted:
                return
            assert time.monotonic() < deadline, f"job {job_id} never became {wanted}: {job}"
            await asyncio.sleep(0.05)


async def _seed(system: JobSystem) -> str:
    """A lab with one admin (cheap argon2 hash: sign-ins in milliseconds)."""
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    async with session_factory(system.engine)() as session, session.begin():
        company = Company(kind=CompanyKind.LAB, name="Ada's lens lab")
        session.add(company)
        await session.flush()
        session.add(
            User(
                company_id=company.id,
                email=EMAIL,
                name="Ada",
                password_hash=hashed,
                role=Role.ADMIN,
            )
        )
        return company.id


def _runner(site: Site) -> Runner:
    """The pdf queue run here: ``flaky-`` orders fail once (with a reason that is
    markup), every other job completes after a short while, so counts move."""

    async def draw(payload: Any, ctx: Any) -> dict[str, int]:
        await ctx.log("looked up the order")
        if payload.order_id.startswith("flaky-") and payload.order_id not in site.failed_once:
            site.failed_once.add(payload.order_id)
            raise PermanentJobError(HOSTILE)
        await asyncio.sleep(0.2)
        return {"pages": 1}

    registry = HandlerRegistry(site.system.job_types)
    registry.register(OrderSheetPdf, draw)
    return Runner(site.system.stores(), [site.system.catalogue["pdf"]], registry)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    executable = chromium_path()
    expect.set_options(timeout=WAIT_MS)
    tmp = tmp_path_factory.mktemp("dashboard")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env.update(
        {
            "ILS_DATA_DIR": str(tmp / "var"),
            "ILS_LOCAL_POLL_INTERVAL_MS": "20",
            "ILS_LOG_LEVEL": "WARNING",
        }
    )
    settings = Settings(_env_file=None, data_dir=tmp / "var", local_poll_interval_ms=20)
    system = await JobSystem.open(settings)  # migrates the embedded database
    log = tmp / "server.log"
    port = free_port()
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ils", "serve", "--no-workers", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    playwright = await async_playwright().start()
    runner: Runner | None = None
    try:
        company_id = await _seed(system)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
            for _ in range(300):
                try:
                    if (await probe.get("/admin/sign-in")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"ils serve did not start:\n{log.read_text()}")
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        the_site = Site(base, system, browser, company_id)
        runner = _runner(the_site)
        runner.start()
        yield the_site
        await browser.close()
    finally:
        if runner is not None:
            await runner.stop(5)
        await playwright.stop()
        await system.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@dataclass
class Tab:
    """A browser tab and what went wrong in it (script errors, CSP refusals)."""

    context: BrowserContext
    page: Page
    problems: list[str]

    def assert_clean(self, *expected: str) -> None:
        """No errors but the ``expected`` ones (text each problem contains)."""
        unexpected = [p for p in self.problems if not any(e in p for e in expected)]
        assert unexpected == [], unexpected


async def open_tab(site: Site, width: int = 1280, height: int = 900) -> Tab:
    context = await site.browser.new_context(
        base_url=site.base, viewport={"width": width, "height": height}
    )
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return Tab(context, page, problems)


async def sign_in(page: Page, next_path: str = "/admin/queues") -> None:
    """Through the sign-in page, as a person would."""
    await page.goto(next_path)
    await page.wait_for_url("**/admin/sign-in?next=*")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


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
    await expect(page.get_by_text("PermanentJobError").first).to_be_visible()
    await expect(page.get_by_text("looked up the order")).to_be_visible()
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
