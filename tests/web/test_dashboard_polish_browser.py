"""Issue 19's dashboard findings, checked where they were found: in Chromium, at a
laptop's 1400x900 and a phone's 390x844.

Why a browser: each finding is about what a person sees — a badge, which button is
offered, a row that fits a phone, an error next to the field, a relative time with the
absolute one on hover (set by the page's script, in the viewer's zone) — so only a real
browser running the page's own script and stylesheet can show it. The server and the
pdf worker are ``tests.web.browser``'s; this module adds a platform admin (only one
may pause a queue). Screenshots of every page at both sizes go to ``screenshot_dir()``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.async_api import Dialog, Page, expect
from sqlalchemy import select

from ils.db.engine import session_factory
from ils.domain.companies import Role, User
from ils.jobs.model import JobOptions, JobState
from tests.web.browser import PASSWORD, Site, open_tab, screenshot_dir, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

PLATFORM_EMAIL = "grace@platform.example"
LAPTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
#: The finding: 19 jobs made an 8,206 px page at phone width.
PHONE_JOBS = 20
#: A job's card at phone width: id, name, attempts, two times and a reason at most.
MAX_CARD_PX = 260

#: Elements sticking out to the right of the viewport (a page a phone scrolls sideways),
#: as ``tag.class`` names; empty when everything fits. What scrolls inside a box of its
#: own (a wide table in its card, a stack trace) does not widen the page.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !clipped(el)) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className}`);
    }
  }
  return { wide: wide.slice(0, 10), scroll: document.documentElement.scrollWidth, width };
}"""


async def add_platform_admin(site: Site) -> None:
    """A platform admin of the site's company (once per module)."""
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    async with session_factory(site.system.engine)() as session, session.begin():
        if await session.scalar(select(User.id).where(User.email == PLATFORM_EMAIL)):
            return
        session.add(
            User(
                company_id=site.company_id,
                email=PLATFORM_EMAIL,
                name="Grace",
                password_hash=hashed,
                role=Role.PLATFORM_ADMIN,
            )
        )


async def sign_in_as(page: Page, email: str, next_path: str) -> None:
    await page.goto(next_path)
    await page.wait_for_url("**/admin/sign-in?next=*")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


async def fits(page: Page) -> None:
    """Nothing on the page is wider than the viewport."""
    found: dict[str, Any] = await page.evaluate(OVERFLOW_JS)
    assert found["scroll"] <= found["width"], found
    assert found["wide"] == [], found


def accept_all(page: Page, seen: list[str]) -> None:
    async def accept(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)


async def test_pausing_a_queue_shows_the_badge_and_offers_only_resume(site: Site) -> None:
    await add_platform_admin(site)
    tab = await open_tab(site, **LAPTOP)
    page = tab.page
    dialogs: list[str] = []
    accept_all(page, dialogs)
    await sign_in_as(page, PLATFORM_EMAIL, "/admin/queues/email")
    toolbar = page.locator(".toolbar")
    badge = page.locator("h1 [data-paused-badge]")
    await expect(badge).to_have_count(0)
    await expect(toolbar.get_by_role("button", name="Resume queue")).to_have_count(0)
    await toolbar.get_by_role("button", name="Pause queue").click()
    await expect(page.locator("#flash")).to_have_text("Queue paused.")
    await expect(badge).to_have_text("Paused")
    await expect(toolbar.get_by_role("button", name="Resume queue")).to_be_visible()
    await expect(toolbar.get_by_role("button", name="Pause queue")).to_have_count(0)
    assert await site.system.local.is_paused("email")
    # The overview's card and the health card's per-queue table say so too.
    await page.goto("/admin/queues")
    card = page.locator('[data-queue="email"]')
    await expect(card.locator("h2 [data-paused-badge]")).to_have_text("Paused")
    await expect(card.locator("h2 [data-paused-badge]")).to_have_attribute(
        "title", re.compile("No new jobs start until the queue is resumed")
    )
    await expect(page.locator(".health th", has_text="email").locator(".badge")).to_be_visible()
    await expect(page.locator('[data-queue="pdf"] [data-paused-badge]')).to_be_hidden()
    await page.screenshot(path=str(screenshot_dir() / "overview-paused-1400.png"), full_page=True)
    # And back.
    await card.get_by_role("link", name="email").click()
    await toolbar.get_by_role("button", name="Resume queue").click()
    await expect(page.locator("#flash")).to_have_text("Queue resumed.")
    await expect(badge).to_have_count(0)
    await expect(toolbar.get_by_role("button", name="Pause queue")).to_be_visible()
    await expect(toolbar.get_by_role("button", name="Resume queue")).to_have_count(0)
    assert not await site.system.local.is_paused("email")
    assert dialogs == [
        "Pause email for every company? Running jobs finish; no new ones start.",
        "Resume email? Waiting jobs start again.",
    ]
    tab.assert_clean()
    await tab.context.close()


async def delayed(site: Site, order_id: str) -> str:
    """A pdf job due in an hour: listed, and not spending the queue's rate limit
    (20 a minute), which the module's other tests need."""
    model = site.system.job_types.get("pdf", "order-sheet").model
    ref = await site.system.producer.enqueue(
        "pdf",
        "order-sheet",
        model.model_validate({"order_id": order_id}),
        JobOptions(company_id=site.company_id, delay_ms=3_600_000),
    )
    return ref.job_id


async def test_a_long_job_list_is_cards_that_fit_a_phone(site: Site) -> None:
    for n in range(PHONE_JOBS):
        await delayed(site, f"phone-{n}")
    tab = await open_tab(site, **PHONE)
    page = tab.page
    await sign_in(page, "/admin/queues/pdf?state=delayed")
    rows = page.locator("tr[data-job-id]")
    assert await rows.count() >= PHONE_JOBS
    await fits(page)
    heights = await rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) <= MAX_CARD_PX, heights
    # The job id reads on one or two lines, not two characters a line.
    link = rows.first.locator("td.id a")
    id_box = await link.bounding_box()
    assert id_box is not None and id_box["height"] < 50 and id_box["width"] > 150, id_box
    # Each value carries its label; an empty cell (no failure reason) is left out.
    await expect(rows.first.locator('td[data-label="Reason"]')).to_be_hidden()
    label = await rows.first.locator('td[data-label="Created"]').evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Created"'
    height = await page.evaluate("document.documentElement.scrollHeight")
    assert height < await rows.count() * MAX_CARD_PX + 1200, height
    # The tab counts show how many there are.
    count = page.locator('[data-state-tab="delayed"] .count')
    assert int(await count.inner_text()) >= PHONE_JOBS
    tab.assert_clean()
    await tab.context.close()


async def test_the_schedule_form_says_what_a_cron_is_and_previews_five_runs(site: Site) -> None:
    tab = await open_tab(site, **LAPTOP)
    page = tab.page
    await sign_in(page, "/admin/schedules")
    form = page.locator("#schedule-form")
    cron = form.get_by_label("Cron expression")
    error = form.locator('[data-error-for="cron"]')
    runs = form.locator("[data-preview-runs] li")
    await cron.fill("0 25 * * *")
    await expect(error).to_contain_text("The hour part (the 2nd) must be 0 to 23")
    await expect(cron).to_have_attribute("aria-invalid", "true")
    await expect(form.locator("[data-preview-note]")).to_have_text(
        "Fix the field marked above to see the next runs."
    )
    await cron.fill("0 7")
    await expect(error).to_contain_text("Has 2 parts instead of five")
    await expect(error).to_contain_text("0 7 * * * runs every day at 07:00")
    assert "String should" not in await error.inner_text()
    # A good one: the error goes, five runs show, on the zone's clock, each with when.
    await cron.fill("30 6 * * 1-5")
    await expect(error).to_be_hidden()
    await expect(runs).to_have_count(5)
    await expect(cron).not_to_have_attribute("aria-invalid", "true")
    for n in range(5):
        run = runs.nth(n)
        await expect(run).to_contain_text(
            re.compile(r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 06:30")
        )
        await expect(run.locator("time")).to_have_text(re.compile(r"^in \d+ (min|h|days?)$"))
        await expect(run.locator("time")).to_have_attribute("title", re.compile(r"\d{4}.*UTC"))
    # An interval previews as well; the zone's own error shows beside the zone.
    await cron.fill("")
    await form.get_by_label("or every … minutes").fill("90")
    await expect(runs).to_have_count(5)
    await form.get_by_label("Time zone").fill("Mars/Olympus")
    await expect(form.locator('[data-error-for="time_zone"]')).to_contain_text(
        "such as Europe/London"
    )
    await form.get_by_label("Time zone").fill("Europe/Berlin")
    await expect(runs).to_have_count(5)
    await page.screenshot(path=str(screenshot_dir() / "schedules-form-1400.png"), full_page=True)
    # Insights can be scheduled, asking which kind.
    await form.get_by_label("Name").fill("Nightly insights")
    await form.get_by_label("Job").select_option("ai/insight-generation")
    await form.get_by_label("Insight").select_option("operations")
    await form.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#flash")).to_have_text("Schedule “Nightly insights” created.")
    row = page.locator("tr[data-schedule-id]").filter(has_text="Nightly insights")
    await expect(row).to_contain_text("insightType: operations")
    await expect(row).to_contain_text("every 90 min")
    # The preview's 422 answers are logged by the browser; those are expected.
    tab.assert_clean("422 (Unprocessable")
    await tab.context.close()


async def test_times_are_relative_with_the_absolute_time_on_hover(site: Site) -> None:
    job_id = await site.enqueue("when-1")
    await site.wait_state(job_id, JobState.COMPLETED)
    tab = await open_tab(site, **LAPTOP)
    page = tab.page
    await sign_in(page, f"/admin/queues/pdf/jobs/{job_id}")
    created = page.locator("dt:text-is('Created') + dd time")
    await expect(created).to_have_text(re.compile(r"^(just now|\d+ min ago)$"))
    title = await created.get_attribute("title")
    stamp = await created.get_attribute("datetime")
    assert title and stamp
    # The viewer's zone (Chromium's here is UTC) with the server's UTC text beside it.
    assert re.fullmatch(r".*\d{4}.*\d\d:\d\d:\d\d.* \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", title)
    assert stamp.endswith("Z")
    # In the list and the audit log as well.
    await page.goto("/admin/queues/pdf?state=completed")
    listed = page.locator(f'tr[data-job-id="{job_id}"] td[data-label="Created"] time')
    await expect(listed).to_have_text(re.compile(r"ago|just now"))
    await expect(listed).to_have_attribute("title", re.compile(r"UTC\)$"))
    tab.assert_clean()
    await tab.context.close()


async def test_cleaning_old_jobs_asks_first_and_says_how_many(site: Site) -> None:
    job_ids = [await site.enqueue(f"flaky-clean-{n}") for n in range(2)]
    for job_id in job_ids:
        await site.wait_state(job_id, JobState.FAILED)
    tab = await open_tab(site, **LAPTOP)
    page = tab.page
    await sign_in(page, "/admin/queues/pdf?state=failed")
    dialogs: list[str] = []
    answer = {"accept": False}

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await (dialog.accept() if answer["accept"] else dialog.dismiss())

    page.on("dialog", on_dialog)
    await page.get_by_text("Clean up old jobs").click()
    form = page.locator("#clean-form")
    await expect(form.get_by_label("Delete jobs that are")).to_have_value("failed")
    await form.locator('input[name="age"]').fill("0")
    async with page.expect_event("dialog"):
        await form.get_by_role("button", name="Clean…").click()
    assert dialogs == [
        "Delete every failed job of pdf made for your company, however new? This cannot be undone."
    ]
    for job_id in job_ids:  # saying no kept them
        assert await site.system.local.get_job("pdf", job_id) is not None
    answer["accept"] = True
    await form.locator('input[name="age"]').fill("1")
    await form.locator('select[name="unit"]').select_option("60")
    await form.get_by_role("button", name="Clean…").click()
    await expect(page.locator("#flash")).to_have_text("Cleaned: 0 failed job(s) deleted.")
    assert "older than 1 minute?" in dialogs[-1]
    await page.get_by_text("Clean up old jobs").click()
    await form.locator('input[name="age"]').fill("0")
    await form.get_by_role("button", name="Clean…").click()
    await expect(page.locator("#flash")).to_have_text(re.compile(r"^Cleaned: [1-9]\d* failed"))
    for job_id in job_ids:
        assert await site.system.local.get_job("pdf", job_id) is None
    await expect(page.locator('[data-state-tab="failed"] .count')).to_have_text("0")
    tab.assert_clean()
    await tab.context.close()


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["1400", "390"])
async def test_screenshots_of_every_page(site: Site, size: dict[str, int]) -> None:
    failed = await site.enqueue(f"flaky-shot-{size['width']}")  # fails once
    await site.wait_state(failed, JobState.FAILED)
    await add_platform_admin(site)
    tab = await open_tab(site, **size)
    page = tab.page
    # The platform admin: the job page then shows its stack traces, the widest part.
    await sign_in_as(page, PLATFORM_EMAIL, "/admin/queues")
    width = size["width"]
    directory = screenshot_dir()
    pages = {
        "overview": "/admin/queues",
        "queue": "/admin/queues/pdf?state=failed",
        "job": f"/admin/queues/pdf/jobs/{failed}",
        "audit": "/admin/audit",
        "schedules": "/admin/schedules",
    }
    for name, path in pages.items():
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        if name == "overview":
            # The health card's per-queue table stays inside its card.
            inside = await page.evaluate(
                """() => {
                  const card = document.querySelector(".health").getBoundingClientRect();
                  const table = document.querySelector(".health .compact").getBoundingClientRect();
                  return table.right <= card.right && table.left >= card.left;
                }"""
            )
            assert inside, f"the per-queue health table spills out of its card at {width} px"
        if name == "job":
            await expect(page.locator("[data-attempt] h4").first).to_contain_text("Attempt 1")
        await fits(page)
        await page.screenshot(path=str(directory / f"{name}-{width}.png"), full_page=True)
    print(f"\nscreenshots: {directory}/*-{width}.png")
    tab.assert_clean()
    await tab.context.close()
