"""The latency charts (and the overview's throughput chart) in a real browser: axis
values on both axes, in the viewer's time zone, and hover detail naming the value and
time of the nearest point.

Why a browser: the charts are drawn by ``charts.js`` at the page's own width, under
the Content-Security-Policy, and the hover detail exists only while a pointer is over
them. The page runs in a zone 5 h 45 min from UTC (Asia/Kathmandu), so a time drawn in
UTC, or ticks put on whole UTC rather than local minutes, would show.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from ils.jobs.model import JobRecord, JobState
from tests.web.browser import Site, Tab, open_tab, screenshot_dir, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

ZONE = "Asia/Kathmandu"
MINUTE = 60_000
#: Between a span's start and end (an en dash).
DASH = "\u2013"


def duration(ms: int) -> str:
    """``charts.js``'s ``duration``: how a chart writes a time."""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    return f"{round(seconds)} s" if seconds >= 10 else f"{round(seconds, 1):g} s"


def local_clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")


async def in_kathmandu(tab: Tab) -> Page:
    """The tab's page with the browser's zone and language set (before any page loads)."""
    session = await tab.context.new_cdp_session(tab.page)
    await session.send("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
    await session.send("Emulation.setLocaleOverride", {"locale": "en-GB"})
    return tab.page


async def finished_jobs(site: Site, count: int, prefix: str) -> list[JobRecord]:
    ids = [await site.enqueue(f"{prefix}-{n}") for n in range(count)]
    records = []
    for job_id in ids:
        await site.wait_state(job_id, JobState.COMPLETED)
        record = await site.system.local.get_job("pdf", job_id)
        assert record is not None and record.finished_at_ms and record.processed_at_ms
        records.append(record)
    return records


async def test_latency_charts_show_axes_and_the_hovered_value(site: Site) -> None:
    records = await finished_jobs(site, 4, "latency")
    tab = await open_tab(site, width=1400, height=1000)
    page = await in_kathmandu(tab)
    await sign_in(page, "/admin/queues/pdf")
    section = page.locator("[data-latency-url]")
    run = section.locator('[data-latency-chart="run"]')
    await expect(run.locator("circle.dot.p95").first).to_be_attached()
    # Axis values: durations up the side, local clock times along the bottom, on whole
    # local ten minutes or coarser (a UTC tick would end in 5 in Kathmandu).
    for figure in (run, section.locator('[data-latency-chart="wait"]')):
        y_labels = await figure.locator(".axis-y text").all_text_contents()
        assert len(y_labels) >= 3 and y_labels[0] == "0 ms", y_labels
        assert all(re.fullmatch(r"[\d.]+ (ms|s|min|h)", label) for label in y_labels[1:]), y_labels
        x_labels = await figure.locator(".axis-x text").all_text_contents()
        assert len(x_labels) >= 3, x_labels
        assert all(re.fullmatch(r"\d\d:\d0", label) for label in x_labels), x_labels
    # Hovering the newest point shows its minute (in Kathmandu) and its p95 run time.
    newest = max(record.finished_at_ms or 0 for record in records)
    minute = newest // MINUTE * MINUTE
    runs = [
        (record.finished_at_ms or 0) - (record.processed_at_ms or 0)
        for record in records
        if (record.finished_at_ms or 0) // MINUTE * MINUTE == minute
    ]
    await run.locator("circle.dot.p95").last.hover(force=True)  # under the hover layer
    tip = run.locator("[data-chart-tip]")
    await expect(tip).to_be_visible()
    await expect(tip.locator(".when")).to_have_text(
        f"{local_clock(minute)}{DASH}{local_clock(minute + MINUTE)}"
    )
    await expect(tip).to_contain_text(f"p95: {duration(max(runs))}")
    await expect(tip).to_contain_text(f"{len(runs)} job")
    shot = screenshot_dir() / "queue-latency-1400.png"
    await page.screenshot(path=str(shot), full_page=True)
    # The day, in quarter hours: the hover names the weekday and a 15-minute span.
    await section.get_by_role("button", name="Last day").click()
    await expect(section).to_have_attribute("data-shown-window", "day")
    await expect(section.get_by_role("button", name="Last day")).to_have_attribute(
        "aria-pressed", "true"
    )
    await run.locator("circle.dot.p50").last.hover(force=True)
    await expect(tip.locator(".when")).to_have_text(
        re.compile(rf"^\w{{3}} \d\d:\d\d{DASH}\d\d:\d\d$")
    )
    # The keyboard reaches the same detail.
    await run.locator("svg.ils-chart").focus()
    await expect(tip).to_be_visible()
    # A phone: the charts stack and fit the screen, axes and all.
    await section.get_by_role("button", name="Last hour").click()
    await expect(section).to_have_attribute("data-shown-window", "hour")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(run.locator("svg.ils-chart")).to_have_attribute("width", re.compile(r"^[23]\d\d$"))
    assert await section.evaluate("s => s.getBoundingClientRect().right <= window.innerWidth")
    phone = screenshot_dir() / "queue-latency-390.png"
    await section.screenshot(path=str(phone))
    print(f"\nscreenshots: {shot} {phone}")
    tab.assert_clean()
    await tab.context.close()


async def test_the_overview_throughput_chart_has_axes_and_hover(site: Site) -> None:
    await finished_jobs(site, 2, "throughput")
    tab = await open_tab(site)
    page = await in_kathmandu(tab)
    await sign_in(page)
    chart = page.locator('[data-queue="pdf"] figure.chart')
    bars = chart.locator("svg rect.completed")
    await expect(bars.first).to_be_visible()
    y_labels = await chart.locator(".axis-y text").all_text_contents()
    assert y_labels[0] == "0" and all(label.isdigit() for label in y_labels), y_labels
    x_labels = await chart.locator(".axis-x text").all_text_contents()
    assert x_labels and all(re.fullmatch(r"\d\d:\d0", label) for label in x_labels), x_labels
    await bars.last.hover(force=True)
    tip = chart.locator("[data-chart-tip]")
    await expect(tip).to_be_visible()
    await expect(tip).to_contain_text(re.compile(r"completed: [1-9]\d*"))
    await expect(tip).to_contain_text("failed: 0")
    shot = screenshot_dir() / "overview-throughput.png"
    await page.locator('[data-queue="pdf"]').screenshot(path=str(shot))
    print(f"\nscreenshot: {shot}")
    tab.assert_clean()
    await tab.context.close()
