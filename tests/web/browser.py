"""The browser test harness of the dashboard: a real ``ils serve`` process, Debian's
Chromium driven by Playwright, and a job system of the test's own on the same
database (it runs the pdf queue with a handler that decides which jobs complete and
which fail).

Chromium is the system's (``apt-get install -y chromium``; ``.ci/run`` installs it), not
one downloaded by ``playwright install``. Without it the tests skip on a developer
machine and fail under CI (``CI=true``). Screenshots go to ``$ILS_SCREENSHOT_DIR`` or
``var/screenshots/`` of the repository.

A browser test module imports ``site`` (a module-scoped fixture: one server per
module), ``open_tab`` and ``sign_in`` from here and marks itself
``pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.errors import PermanentJobError
from ils.jobs.job_types import OrderSheetPdf
from ils.jobs.model import JobOptions, JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from tests.conftest import free_port
from tests.support.serving import until_serving

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "ada@lab.example"
PASSWORD = "correct horse battery staple"
#: Playwright's wait for one expectation; generous for a loaded CI machine.
WAIT_MS = 15_000
HOSTILE = "<script>alert('owned')</script> order has no lens data"


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
        ref = await self.system.producer.enqueue(
            "pdf",
            "order-sheet",
            model.model_validate({"order_id": order_id}),
            JobOptions(company_id=self.company_id),
        )
        return ref.job_id

    async def wait_state(self, job_id: str, wanted: JobState) -> None:
        job: JobRecord | None = None

        async def reached() -> bool:
            nonlocal job
            job = await self.system.local.get_job("pdf", job_id)
            return job is not None and job.state is wanted

        await eventually(
            reached,
            WAIT_MS / 1000,
            interval=0.05,
            message=lambda: f"job {job_id} never became {wanted}: {job}",
        )


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
        await until_serving(base, server, log.read_text, path="/admin/sign-in")
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
