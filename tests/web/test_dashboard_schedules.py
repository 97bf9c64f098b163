"""The dashboard's schedules page (``/admin/schedules``): who may open it, whose schedules
it lists, their next runs in their own zone and in UTC, escaping, and its buttons and
form, which call the schedule API (the API audits; the page changes nothing itself).

The ASGI tests run on SQLite and PostgreSQL; schedules are made through the API as an
admin would. The one browser test reuses ``test_dashboard_browser``'s server and
Chromium (set up again for this module) and is skipped, like those, without Chromium.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Dialog, expect

from ils.domain.companies import CompanyKind, Role
from ils.domain.company_queries import company_names
from ils.jobs.schedules.store import ScheduleStore
from ils.web.state import WebState
from ils.workers.scheduled.builtins import builtin_schedules
from tests.web import test_dashboard_browser as browser
from tests.web.conftest import DbMaker, Factory, SignedIn
from tests.web.test_dashboard import assert_html

PAGE = "/admin/schedules"
BERLIN = "Europe/Berlin"
HOSTILE = "<script>alert('owned')</script> & co"
BRIEFING: dict[str, Any] = {
    "name": "Morning briefing",
    "cron": "0 7 * * *",
    "jobs": [{"queue": "ai", "name": "daily-briefing", "data": {"date": "{date}"}}],
}

#: ``test_dashboard_browser``'s server and browser, started once for this module's
#: browser test (module-scoped there, so this module gets its own).
site = browser.site


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """A schedule made through the API (which validates and audits it)."""
    response = await client.post("/api/schedules", json={**BRIEFING, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def row_of(page: str, schedule_id: str) -> str:
    """The table row of one schedule."""
    found = re.search(rf'<tr data-schedule-id="{re.escape(schedule_id)}">.*?</tr>', page, re.S)
    assert found, f"no row for {schedule_id}"
    return found.group(0)


async def test_without_a_session_the_page_redirects_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/sign-in?next={quote(PAGE, safe='')}"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_roles_without_dashboard_rights_get_the_403_page(
    signed_in: SignedIn, factory: Factory
) -> None:
    practice = await factory.company(CompanyKind.PRACTICE)
    lab = await factory.company(CompanyKind.LAB)
    admin, _ = await signed_in(Role.ADMIN, company=practice)
    created = await create(admin)
    staff, _ = await signed_in(Role.STAFF, company=practice)
    tech, _ = await signed_in(Role.LAB_TECH, company=lab)
    for user_client in (staff, tech):
        page = assert_html(await user_client.get(PAGE), 403)
        assert "may not use the queue dashboard" in page
        assert created["id"] not in page and "Morning briefing" not in page


async def test_an_admin_sees_their_companys_schedules_with_next_runs(
    signed_in: SignedIn, factory: Factory
) -> None:
    company = await factory.company(CompanyKind.LAB, name="Lens Lab Berlin", time_zone=BERLIN)
    admin, _ = await signed_in(Role.ADMIN, company=company)
    other, _ = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    mine = await create(admin)
    interval = await create(
        admin,
        name="Revenue anomalies",
        cron=None,
        every_s=900,
        catch_up="skip",
        jobs=[{"queue": "ai", "name": "anomaly-detection", "data": {"metricType": "revenue"}}],
    )
    theirs = await create(other, name="Their forecast")

    page = assert_html(await admin.get(PAGE))
    assert "Their forecast" not in page and theirs["id"] not in page
    row = row_of(page, mine["id"])
    assert "Morning briefing" in row and "Lens Lab Berlin" in row
    assert f'<code>0 7 * * *</code><br><small class="muted">{BERLIN}</small>' in row
    assert "catch up once" in row and ">active<" in row
    assert "<code>ai/daily-briefing</code>" in row and "date: {date}" in row
    # The next run: 07:00 on Berlin's wall clock, and the same instant in UTC.
    next_run = datetime.fromisoformat(mine["next_run_at"])
    local = next_run.astimezone(ZoneInfo(BERLIN))
    assert local.hour == 7 and local.minute == 0
    assert f"{local:%Y-%m-%d} 07:00 {local:%Z}" in row
    assert f"{next_run.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in row
    # Its buttons call the API; running it asks first; pausing needs no confirmation.
    api = f"/api/schedules/{quote(mine['id'], safe='')}"
    assert f'data-method="POST" data-url="{api}/pause"' in row and "/resume" not in row
    assert f'data-url="{api}/run"' in row and 'data-confirm="Run schedule' in row
    assert f'data-method="DELETE" data-url="{api}"' in row
    assert 'data-confirm="Delete schedule' in row

    other_row = row_of(page, interval["id"])
    assert "every 15 min" in other_row and "skip missed" in other_row
    assert "<code>ai/anomaly-detection</code>" in other_row and "metricType: revenue" in other_row
    assert "companyId" not in other_row  # the API adds it; the page leaves it out

    # The form: the company's zone by default, only the AI jobs a company may schedule.
    assert f'name="time_zone" value="{BERLIN}"' in page
    assert 'value="ai/daily-briefing"' in page and 'value="ai/anomaly-detection"' in page
    assert "cleanup-expired-data" not in page and 'name="company_wide"' not in page
    assert 'data-url="/api/schedules"' in page and "data-form-errors" in page
    # The navigation links the page, marked as the current one.
    assert '<a href="/admin/schedules" aria-current="page">Schedules</a>' in page
    overview = assert_html(await admin.get("/admin/queues"))
    assert '<a href="/admin/schedules">Schedules</a>' in overview

    # The other company's admin sees theirs, not ours.
    their_page = assert_html(await other.get(PAGE))
    assert theirs["id"] in their_page and mine["id"] not in their_page


async def test_a_platform_admin_sees_every_schedule(signed_in: SignedIn, factory: Factory) -> None:
    lab = await factory.company(CompanyKind.LAB, name="North Lab")
    practice = await factory.company(CompanyKind.PRACTICE, name="South Practice")
    lab_admin, _ = await signed_in(Role.ADMIN, company=lab)
    practice_admin, _ = await signed_in(Role.COMPANY_ADMIN, company=practice)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    north = await create(lab_admin, name="North briefing")
    south = await create(practice_admin, name="South briefing")
    cleanup = await create(
        platform,
        name="Weekly clean-up",
        cron="0 4 * * 0",
        time_zone="UTC",
        company_wide=True,
        jobs=[{"queue": "scheduled", "name": "cleanup-expired-data", "data": {}}],
    )
    page = assert_html(await platform.get(PAGE))
    assert "North Lab" in row_of(page, north["id"])
    assert "South Practice" in row_of(page, south["id"])
    assert "<em>platform</em>" in row_of(page, cleanup["id"])
    # A platform admin may schedule any job, for no company too.
    assert 'value="scheduled/cleanup-expired-data"' in page and 'name="company_wide"' in page
    # Each company's admin still sees only their own.
    assert cleanup["id"] not in assert_html(await lab_admin.get(PAGE))
    assert south["id"] not in assert_html(await lab_admin.get(PAGE))


async def test_company_names_names_only_the_ids_asked_for(factory: Factory, db: DbMaker) -> None:
    """The page's name lookup (``ils.domain.company_queries``): one name per known id,
    an unknown id left out, and nothing asked for nothing."""
    north = await factory.company(CompanyKind.LAB, name="North Lab")
    await factory.company(CompanyKind.LAB, name="Not Asked For")
    async with db() as session:
        assert await company_names(session, [north.id, north.id, "0" * 32]) == {
            north.id: "North Lab"
        }
        assert await company_names(session, []) == {}


async def test_paused_and_built_in_schedules_show_what_they_allow(
    signed_in: SignedIn, state: WebState, db: DbMaker, factory: Factory
) -> None:
    company = await factory.company(CompanyKind.LAB, name="Built Lab")
    admin, _ = await signed_in(Role.COMPANY_ADMIN, company=company)
    created = await create(admin)
    async with db() as session, session.begin():
        for schedule in builtin_schedules(company):
            await ScheduleStore().save(session, schedule, datetime.now(UTC))
    paused = await admin.post(f"/api/schedules/{quote(created['id'], safe='')}/pause")
    assert paused.status_code == 200, paused.text

    page = assert_html(await admin.get(PAGE))
    row = row_of(page, created["id"])
    assert ">paused<" in row and "Resume" in row and "/pause" not in row
    assert '<td class="time" data-next-run>—</td>' in row  # no next run while paused
    builtin = row_of(page, f"briefing:{company.id}")
    assert ">built-in<" in builtin and "Daily briefing" in builtin
    assert "Pause" in builtin and "Run now" in builtin
    assert "Delete" not in builtin and "DELETE" not in builtin
    # The change went through the API, so the audit log has it.
    audit = assert_html(await admin.get("/admin/audit"))
    assert '<tr data-audit-action="schedule-pause">' in audit
    # A schedule's entry links to the schedules page, not to a job.
    assert '<a href="/admin/schedules" data-audit-schedule>' in audit


async def test_schedule_names_are_escaped(signed_in: SignedIn) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    created = await create(admin, name=HOSTILE)
    response = await admin.get(PAGE)
    page = assert_html(response)
    escaped = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; &amp; co"
    assert f'<td class="wrap" data-schedule-name>{escaped}</td>' in row_of(page, created["id"])
    assert f'data-confirm="Delete schedule “{escaped}”?' in page
    assert "<script>alert" not in page
    # Scripts by src only, no inline code, and the dashboard's policy.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/admin/static/dashboard.js" defer>']
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.asyncio(loop_scope="module")
async def test_create_pause_and_delete_in_the_browser(site: browser.Site) -> None:
    tab = await browser.open_tab(site)
    page = tab.page
    await browser.sign_in(page, PAGE)
    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    form = page.locator("#schedule-form")
    # The API's 422 shows next to the form, and nothing is created.
    await form.get_by_label("Name").fill("Browser briefing")
    await form.get_by_label("Cron").fill("not a cron")
    await form.get_by_role("button", name="Create schedule").click()
    errors = form.locator("[data-form-errors]")
    await expect(errors).to_be_visible()
    await expect(errors).to_contain_text("cron:")
    await expect(form.get_by_label("Cron")).to_have_attribute("aria-invalid", "true")
    # Anomaly detection asks for its metric; the briefing does not.
    metric = form.get_by_label("Metric")
    await expect(metric).to_be_hidden()
    await form.get_by_label("Job").select_option("ai/anomaly-detection")
    await expect(metric).to_be_visible()
    await metric.select_option("orders")
    await form.get_by_label("Cron").fill("15 6 * * 1-5")
    await form.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#flash")).to_have_text("Schedule “Browser briefing” created.")
    row = page.locator("tr[data-schedule-id]").filter(has_text="Browser briefing")
    await expect(row.locator("[data-schedule-state]")).to_have_text("active")
    await expect(row).to_contain_text("metricType: orders")
    # Pause: no question, the page reloads with the new state.
    await row.get_by_role("button", name="Pause").click()
    await expect(page.locator("#flash")).to_have_text("Schedule paused.")
    await expect(row.locator("[data-schedule-state]")).to_have_text("paused")
    await expect(row.locator("[data-next-run]")).to_have_text("—")
    await row.get_by_role("button", name="Resume").click()
    await expect(row.locator("[data-schedule-state]")).to_have_text("active")
    shot = browser.screenshot_dir() / "dashboard-schedules.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    # Delete asks first.
    await row.get_by_role("button", name="Delete").click()
    await expect(page.locator("#flash")).to_have_text("Schedule deleted.")
    await expect(row).to_have_count(0)
    assert dialogs == ["Delete schedule “Browser briefing”? This cannot be undone."]
    # The 422 answer is logged by the browser; that one is expected.
    tab.assert_clean("422 (Unprocessable")
    await tab.context.close()
