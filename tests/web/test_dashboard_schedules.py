"""The dashboard's schedules page (``/admin/schedules``): who may open it, whose schedules
it lists, their next runs in their own zone and in UTC, escaping, and its buttons and
form, which call the schedule API (the API audits; the page changes nothing itself).

The ASGI tests run on SQLite and PostgreSQL; schedules are made through the API as an
admin would. The one browser test reuses the browser harness's server (``tests/web/browser.py``) and
Chromium (set up again for this module) and is skipped, like those, without Chromium.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
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
from tests.web import browser
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
    assert "cleanup-expired-data" not in page and 'name="company"' not in page
    assert 'value="ai/insight-generation"' in page  # insights can be scheduled too
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
    # A platform admin may schedule the platform's jobs, for any company or for none.
    assert 'value="scheduled/cleanup-expired-data"' in page and 'name="company"' in page
    assert '<option value="" data-zone="UTC">The platform (no company)</option>' in page
    assert re.search(rf'<option value="{north["company_id"]}" data-zone="[^"]+">North Lab<', page)
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
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts[:2] == [
        '<script src="/admin/static/dashboard.js" defer>',
        '<script src="/admin/static/forms.js" defer>',
    ]
    assert all(re.fullmatch(r'<script src="/admin/static/[a-z-]+\.js" defer>', s) for s in scripts)
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
    # The API's 422 shows beside its field, in words, and nothing is created.
    await form.get_by_label("Cron").fill("not a cron")
    await form.get_by_role("button", name="Create schedule").click()
    await expect(form.locator('[data-error-for="name"]')).to_be_visible()
    await form.get_by_label("Name").fill("Browser briefing")
    await form.get_by_role("button", name="Create schedule").click()
    error = form.locator('[data-error-for="cron"]')
    await expect(error).to_contain_text("Has 3 parts instead of five")
    await expect(form.locator('[data-error-for="name"]')).to_be_hidden()
    await expect(form.get_by_label("Cron")).to_have_attribute("aria-invalid", "true")
    made = page.locator("tr[data-schedule-id]").filter(has_text="Browser briefing")
    await expect(made).to_have_count(0)
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


async def preview(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/schedules/preview", json=body)


def problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {p["field"]: p["message"] for p in response.json()["detail"]}


async def test_preview_gives_the_next_five_runs_on_the_zones_clock(
    signed_in: SignedIn, factory: Factory, client: httpx.AsyncClient
) -> None:
    assert (await preview(client, cron="0 7 * * *")).status_code == 401
    company = await factory.company(CompanyKind.LAB, time_zone=BERLIN)
    admin, _ = await signed_in(Role.ADMIN, company=company)
    response = await preview(admin, cron=" 30  6 * * 1-5 ")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["time_zone"] == BERLIN  # the company's own when none is given
    runs = [datetime.fromisoformat(run["at"]) for run in answer["runs"]]
    assert len(runs) == 5 and runs == sorted(runs) and runs[0] > datetime.now(UTC)
    for run, shown in zip(runs, answer["runs"], strict=True):
        local = run.astimezone(ZoneInfo(BERLIN))
        assert (local.hour, local.minute) == (6, 30) and local.weekday() < 5
        assert shown["local"] == f"{local:%a %Y-%m-%d} 06:30 {local:%Z}"
    # An interval, in another zone, and fewer runs when asked.
    every = (await preview(admin, every_s=900, time_zone="UTC", count=3)).json()
    gaps = [
        (datetime.fromisoformat(b["at"]) - datetime.fromisoformat(a["at"])).total_seconds()
        for a, b in zip(every["runs"], every["runs"][1:], strict=False)
    ]
    assert len(every["runs"]) == 3 and gaps == [900, 900]
    # A schedule that ends before its fifth run has fewer.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2, minutes=30)
    ending = (await preview(admin, cron="0 * * * *", end=soon.isoformat())).json()
    assert 1 <= len(ending["runs"]) <= 3
    # Nothing was stored or audited.
    assert (await admin.get("/api/schedules")).json() == []
    assert '<tr data-audit-action="schedule' not in assert_html(await admin.get("/admin/audit"))


async def test_timing_problems_are_said_in_words(signed_in: SignedIn) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    short = problems(await preview(admin, cron="0 7"))["cron"]
    assert "has 2 parts instead of five" in short
    assert "minute, hour, day of the month, month and day of the week" in short
    assert "0 7 * * * runs every day at 07:00" in short
    assert "String should" not in short
    hour = problems(await preview(admin, cron="0 25 * * *"))["cron"]
    assert hour.startswith("the hour part (the 2nd) must be 0 to 23")
    assert "25" not in hour  # the value sent is not repeated
    assert "never matches a date" in problems(await preview(admin, cron="0 7 31 2 *"))["cron"]
    assert "is empty" in problems(await preview(admin, cron="   "))["cron"]
    assert "need" in problems(await preview(admin))["cron"]
    assert "not both" in problems(await preview(admin, cron="0 7 * * *", every_s=600))["cron"]
    zone = problems(await preview(admin, cron="0 7 * * *", time_zone="Mars/Olympus"))
    assert "such as Europe/London" in zone["time_zone"]
    assert "one minute" in problems(await preview(admin, every_s=30))["every_s"]
    # Creating says the same.
    made = await admin.post("/api/schedules", json={**BRIEFING, "cron": "61 7 * * *"})
    assert problems(made)["cron"].startswith("the minute part (the 1st) must be 0 to 59")


async def test_a_platform_admin_chooses_whose_schedule_it_is(
    signed_in: SignedIn, factory: Factory
) -> None:
    lab = await factory.company(CompanyKind.LAB, name="Chosen Lab", time_zone=BERLIN)
    gone = await factory.company(CompanyKind.LAB, name="Closed Lab", is_active=False)
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    made = await create(platform, company_id=lab.id)
    assert made["company_id"] == lab.id and made["time_zone"] == BERLIN  # its zone
    assert made["jobs"][0]["data"]["companyId"] == lab.id  # its AI job is that company's
    page = assert_html(await platform.get(PAGE))
    assert "Chosen Lab" in row_of(page, made["id"])
    own = re.search(rf'<option value="{me.company_id}" data-zone="[^"]+" selected>', page)
    assert own  # the form starts on the admin's own company
    assert "Closed Lab" not in page  # inactive companies are not offered
    refused = await platform.post("/api/schedules", json={**BRIEFING, "company_id": gone.id})
    assert "no active company" in problems(refused)["company_id"]
    # Only platform admins choose: anyone else names only their own company.
    theirs = await admin.post("/api/schedules", json={**BRIEFING, "company_id": lab.id})
    assert "only platform admins" in problems(theirs)["company_id"]


async def test_insights_can_be_scheduled_by_a_company(signed_in: SignedIn) -> None:
    admin, user = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    page = assert_html(await admin.get(PAGE))
    option = re.search(r'<option value="ai/insight-generation" data-job="([^"]+)"', page)
    assert option
    job = json.loads(html.unescape(option.group(1)))
    assert job["data"] == {"periodStart": "{date}", "periodEnd": "{date}"}
    assert 'data-param-field="insightType"' in page and '<option value="patient-care">' in page
    job["data"]["insightType"] = "operations"
    made = await create(admin, name="Nightly insights", cron="0 23 * * *", jobs=[job])
    assert made["jobs"][0]["data"]["companyId"] == user.company_id
