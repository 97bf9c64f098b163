"""The way in: ``/`` in a real browser leads to the dashboard and to the API docs.

Reported: ``GET /`` was a JSON 404 and nothing said where to go.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.browser import EMAIL, PASSWORD, Site, open_tab, screenshot_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_from_the_landing_page_to_the_dashboard_and_the_api_docs(site: Site) -> None:
    tab = await open_tab(site, width=1400, height=900)
    page = tab.page
    response = await page.goto("/")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", name="ILS")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir() / "landing-1400.png"), full_page=True)

    await page.get_by_role("link", name="Sign in to the dashboard").click()
    await page.wait_for_url("**/admin/sign-in?next=*")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/admin/queues")

    await page.goto("/")
    await expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()
    await page.get_by_role("link", name="The queues dashboard").click()
    await page.wait_for_url("**/admin/queues")

    await page.goto("/")
    await page.get_by_role("link", name="The API, interactive").click()
    await page.wait_for_url("**/docs")
    await expect(page).to_have_title("ILS - Swagger UI")
    await tab.context.close()
