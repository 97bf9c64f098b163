"""The overview's health panel in a real browser tells the truth as it changes.

Reported: health said "ok" with no worker running while jobs had waited for a minute.
Here a job waits in a queue no process works: the panel names the problem within one
refresh, without a reload, and drops it once a worker process for that queue starts
(its first heartbeat), again without a reload.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_process import run_workers
from tests.web.browser import Site, open_tab, screenshot_dir, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_queue_without_a_worker_shows_as_a_problem_until_a_worker_starts(
    site: Site,
) -> None:
    tab = await open_tab(site, width=1400, height=900)
    page = tab.page
    await sign_in(page)
    problem = page.locator('[data-problems] li[data-code="queue_without_worker"]', has_text="email")
    await expect(problem).to_have_count(0)

    await site.system.helpers.queue_order_confirmation_email("order-1", "user-1")
    await expect(problem).to_have_count(1)  # the next health refresh, no reload
    await expect(problem).to_contain_text("critical")
    await expect(problem).to_contain_text("no live worker")
    await page.screenshot(path=str(screenshot_dir() / "health-problem-1400.png"), full_page=True)

    release = asyncio.Event()

    async def send(payload: OrderConfirmationEmail, ctx: object) -> None:
        await release.wait()

    registry = HandlerRegistry(site.system.job_types)
    registry.register(OrderConfirmationEmail, send)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_workers(site.system, ["email"], registry, stop=stop))
    try:
        await expect(problem).to_have_count(0)
    finally:
        release.set()
        stop.set()
        await worker
    tab.assert_clean()
    await tab.context.close()


async def test_pausing_elsewhere_shows_the_badge_and_the_problem_without_a_reload(
    site: Site,
) -> None:
    tab = await open_tab(site, width=1400, height=900)
    page = tab.page
    await sign_in(page)
    badge = page.locator('article[data-queue="oma"] [data-paused-badge]')
    await expect(badge).to_be_hidden()
    await site.system.admin.pause("oma")  # another admin, the CLI: not this page
    try:
        await expect(badge).to_be_visible()
        paused = page.locator('[data-problems] li[data-code="queue_paused"]', has_text="oma")
        await expect(paused).to_have_count(1)
    finally:
        await site.system.admin.resume("oma")
    await expect(badge).to_be_hidden()
    tab.assert_clean()
    await tab.context.close()
