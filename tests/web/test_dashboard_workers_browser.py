"""The workers page in a real browser, showing a real worker process's running job.

Why a real ``ils worker`` process rather than the harness's in-process runner: what
this page shows comes from the heartbeat a worker process writes (host, pid, version,
its running jobs, counts), and only a worker process writes one. The worker works the
email queue with handlers that hold each job until the test creates a file
(``tests/support/hold_handlers.py``), so the job is certainly running while the page
is checked; the harness's own runner only takes pdf jobs, so it never competes.

The page is checked as a platform_admin (who sees hosts and pids; the screenshots
``workers-1400.png`` and ``workers-390.png``) and as the lab's admin (who does not).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import Page, expect

from ils import __version__
from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.jobs.model import JobOptions, JobState
from ils.jobs.workers_view import worker_processes
from ils.testing import eventually, wait_until
from tests.web.browser import PASSWORD, ROOT, Site, open_tab, screenshot_dir, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

PLATFORM_EMAIL = "grace@platform.example"
HEARTBEAT_S = 0.5
#: A worker process imports every handler package (numpy, statsmodels) before it
#: beats: seconds on a loaded machine.
START_TIMEOUT_S = 90.0
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
RELATIVE = re.compile(r"^(just now|\d+ s ago)$")


@dataclass
class WorkerProcess:
    """An ``ils worker`` on the site's database, holding jobs until ``release``."""

    process: subprocess.Popen[bytes]
    release: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def worker(site: Site, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env.update(
        {
            "ILS_DATA_DIR": str(site.system.settings.data_dir),
            "ILS_LOCAL_POLL_INTERVAL_MS": "20",
            "ILS_WORKER_HEARTBEAT_S": str(HEARTBEAT_S),
            "ILS_SHUTDOWN_GRACE_S": "5",
            "ILS_LOG_LEVEL": "WARNING",
            "ILS_TEST_RELEASE": str(tmp_path / "release"),
        }
    )
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ils",
                "worker",
                "--queues",
                "email",
                "--handlers",
                "tests.support.hold_handlers:register",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = WorkerProcess(process, tmp_path / "release", log)
    try:
        yield running
    finally:
        running.release.touch()
        running.stop()
    assert "Traceback" not in log.read_text(), log.read_text()


async def _platform_admin(site: Site) -> None:
    """A platform admin of a company of their own (cheap hash: quick sign-in)."""
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    async with session_factory(site.system.engine)() as session, session.begin():
        company = Company(kind=CompanyKind.LAB, name="The platform")
        session.add(company)
        await session.flush()
        session.add(
            User(
                company_id=company.id,
                email=PLATFORM_EMAIL,
                name="Grace",
                password_hash=hashed,
                role=Role.PLATFORM_ADMIN,
            )
        )


async def _sign_in_as(page: Page, email: str, next_path: str) -> None:
    await page.goto(next_path)
    await page.wait_for_url("**/admin/sign-in?next=*")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


async def _reported_running(site: Site, worker: WorkerProcess, job_id: str) -> None:
    """Wait until the worker's heartbeat names ``job_id`` among its running jobs."""

    async def reported() -> bool:
        view = await worker_processes(site.system.local, site.system.clock.now_ms(), 10.0)
        return any(
            job.job_id == job_id
            for w in view.live
            if w.pid == worker.process.pid
            for job in w.running
        )

    def why() -> str:
        return f"the worker never reported job {job_id}:\n{worker.log.read_text()}"

    await eventually(reported, timeout=START_TIMEOUT_S, interval=0.1, message=why)


async def test_the_workers_view_shows_a_worker_s_running_job(
    site: Site, worker: WorkerProcess
) -> None:
    await _platform_admin(site)
    model = site.system.job_types.get("email", "order-confirmation").model
    ref = await site.system.producer.enqueue(
        "email",
        "order-confirmation",
        model.model_validate({"order_id": "ord-held", "user_id": "usr-1"}),
        JobOptions(company_id=site.company_id),
    )
    job_id = ref.job_id
    await _reported_running(site, worker, job_id)

    tab = await open_tab(site, 1400, 900)
    page = tab.page
    await _sign_in_as(page, PLATFORM_EMAIL, "/admin/workers")
    await expect(page.get_by_role("heading", name="Workers", exact=True)).to_be_visible()
    card = page.locator('[data-workers="live"] [data-worker-state="live"]').filter(
        has=page.locator(f'[data-running-job="{job_id}"]')
    )
    await expect(card).to_have_count(1)
    await expect(card.locator("[data-worker-pid]")).to_have_text(str(worker.process.pid))
    await expect(card.locator("[data-worker-host]")).to_have_text(socket.gethostname())
    await expect(card).to_contain_text(__version__)
    await expect(card).to_contain_text("email \u00d7 ")
    await expect(card).to_contain_text("1 of ")
    # Relative times, with the UTC time on hover.
    seen = card.locator("[data-worker-seen] time")
    await expect(seen).to_have_attribute("title", UTC_TIME)
    await expect(seen).to_have_text(RELATIVE)
    directory = screenshot_dir()
    wide = directory / "workers-1400.png"
    await page.screenshot(path=str(wide), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    phone = directory / "workers-390.png"
    await page.screenshot(path=str(phone), full_page=True)
    # Cards, not a wide table: nothing sticks out sideways on a phone.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    print(f"\nscreenshots: {wide} {phone}")

    # The running job links to its job page, where it is active.
    await card.locator(f'[data-running-job="{job_id}"] a').click()
    await page.wait_for_url(f"**/admin/queues/email/jobs/{job_id}")
    await expect(page.locator("[data-job-state]")).to_have_text("active")
    tab.assert_clean()
    await tab.context.close()

    # The lab's admin sees the same worker and their company's job, not host or pid.
    tab = await open_tab(site, 390, 844)
    page = tab.page
    await sign_in(page, "/admin/workers")
    mine = page.locator(f'[data-running-job="{job_id}"]')
    await expect(mine).to_contain_text("order-confirmation")
    await expect(page.locator("[data-worker-host]")).to_have_count(0)
    await expect(page.locator("[data-worker-pid]")).to_have_count(0)
    assert str(worker.process.pid) not in await page.content()

    # Let the job finish and stop the worker: it is listed as recently gone, with
    # the job counted as done.
    worker.release.touch()

    async def completed() -> bool:
        job = await site.system.local.get_job("email", job_id)
        return job is not None and job.state is JobState.COMPLETED

    await eventually(completed, timeout=30, interval=0.05)
    worker.stop()
    wait_until(lambda: worker.process.poll() is not None, timeout=30)
    await page.goto("/admin/workers")
    gone = page.locator('[data-workers="gone"] [data-worker-state="stopped"]')
    await expect(gone).to_have_count(1)
    await expect(gone.locator("[data-worker-done]")).to_have_text("1")
    await expect(gone).to_contain_text("stopped")
    tab.assert_clean()
    await tab.context.close()
