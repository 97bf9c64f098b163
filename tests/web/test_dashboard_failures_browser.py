"""The failure groups page in a real browser (Debian's Chromium, Playwright, a real
``ils serve``): fifty jobs failing the same way are one group, and one confirmed
Retry all sends every one of them back to waiting.

The oma queue fails here: this test process runs it with a handler that raises the
same error for every job, naming each job's own order and file, so only the masking
makes them one group. The runner stops once they have failed, so the retried jobs
wait (the server runs no workers) and the test can see each of them leave failed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import Dialog, expect

from ils.errors import PermanentJobError
from ils.jobs.job_types import ProcessOmaFile
from ils.jobs.model import JobOptions, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.testing import eventually
from tests.web.browser import EMAIL, Site, open_tab, screenshot_dir, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

JOBS = 50
MESSAGE = "tracing file <uuid> of order <uuid> has no shape records"


async def states(site: Site, job_ids: list[str]) -> list[JobState | None]:
    found = [await site.system.local.get_job("oma", job_id) for job_id in job_ids]
    return [None if job is None else job.state for job in found]


async def fail_tracings(site: Site, count: int) -> list[str]:
    """``count`` oma jobs of the site's lab, each failing for good with the same error
    about its own order and file."""
    system = site.system
    model = system.job_types.get("oma", "process-oma-file").model
    job_ids = []
    for _ in range(count):
        payload = model.model_validate({"order_id": uuid.uuid4().hex, "file_id": uuid.uuid4().hex})
        ref = await system.producer.enqueue(
            "oma", "process-oma-file", payload, JobOptions(company_id=site.company_id)
        )
        job_ids.append(ref.job_id)

    async def broken(payload: ProcessOmaFile, ctx: Any) -> None:
        raise PermanentJobError(
            f"tracing file {payload.file_id} of order {payload.order_id} has no shape records"
        )

    registry = HandlerRegistry(system.job_types)
    registry.register(ProcessOmaFile, broken)
    runner = Runner(system.stores(), [system.catalogue["oma"]], registry)
    runner.start()
    try:
        await eventually(
            lambda: _all_in(site, job_ids, JobState.FAILED),
            timeout=60,
            message="the oma jobs did not all fail",
        )
    finally:
        await runner.stop(5)
    return job_ids


async def _all_in(site: Site, job_ids: list[str], wanted: JobState) -> bool:
    return set(await states(site, job_ids)) == {wanted}


async def test_a_group_of_fifty_failures_retried_in_one_action(site: Site) -> None:
    job_ids = await fail_tracings(site, JOBS)
    tab = await open_tab(site, 1400, 900)
    page = tab.page
    await sign_in(page, "/admin/failures")
    group = page.locator(".failure-group").filter(has_text="has no shape records")
    await expect(group).to_have_count(1)
    await expect(group.locator("[data-group-count]")).to_have_text(str(JOBS))
    await expect(group.locator("[data-group-message]")).to_have_text(MESSAGE)
    await expect(group.locator("[data-group-type]")).to_have_text("ils.errors.PermanentJobError")
    # Stack traces are the platform admin's only (tests/web/test_infra_redaction.py):
    # the lab's admin gets the group without its sample trace.
    await expect(group.locator(".sample-trace")).to_have_count(0)
    directory = screenshot_dir()
    laptop = directory / "failures-1400.png"
    await page.screenshot(path=str(laptop), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    phone = directory / "failures-390.png"
    await page.screenshot(path=str(phone), full_page=True)
    # Nothing sticks out sideways on a phone.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    print(f"\nscreenshots: {laptop} {phone}")

    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.accept()

    page.on("dialog", accept)
    await group.get_by_role("button", name="Retry all").click()
    # The page reloads after the action and tells what was done.
    await expect(page.locator("#flash")).to_have_text(f"Retried: {JOBS} job(s).")
    assert dialogs == [f"confirm: Retry {JOBS} failed oma / process-oma-file job(s) of this group?"]
    # Every one of the fifty left failed: they wait to run again (no oma worker runs now).
    assert set(await states(site, job_ids)) == {JobState.WAITING}
    await expect(
        page.locator(".failure-group").filter(has_text="has no shape records")
    ).to_have_count(0)

    await page.get_by_role("link", name="Audit log").click()
    await page.wait_for_url("**/admin/audit")
    entry = page.locator('tr[data-audit-action="group-retry"]')
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(EMAIL)
    await expect(entry).to_contain_text(f'"count": {JOBS}')
    tab.assert_clean()
    await tab.context.close()
