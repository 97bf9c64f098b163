"""The admin dashboard's pages over HTTP (ASGI client, SQLite and PostgreSQL): who may
open them, what they show, escaped, and the headers that keep them inert.

The browser behaviour (live counts, the actions' confirm dialogs) is in
``test_dashboard_browser.py``; here every page is checked as the HTML a server sends.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.errors import PermanentJobError
from ils.jobs.job_types import OrderSheetPdf
from ils.jobs.registry import Handler
from ils.settings import Settings
from ils.web.app import create_app
from ils.web.dashboard.pages import traces_by_attempt
from ils.web.state import WebState
from tests.conftest import delete_prefix
from tests.web.conftest import (
    BASE_URL,
    SECRET_KEY,
    Factory,
    SignedIn,
    cheap_hasher,
    run_pdf_until_failed,
    sign_in,
)
from tests.web.test_queue_jobs import add

MANAGERS = (Role.PLATFORM_ADMIN, Role.ADMIN, Role.COMPANY_ADMIN)
QUEUES = ("email", "pdf", "notification", "ai", "oma", "scheduled")
HOSTILE = "<script>alert('owned')</script> & the order has no lens data"


def pages_of(job_id: str) -> list[str]:
    """Every dashboard page, the job page for ``job_id``."""
    return [
        "/admin/queues",
        "/admin/queues/pdf",
        "/admin/queues/pdf?state=failed&search=order",
        f"/admin/queues/pdf/jobs/{job_id}",
        "/admin/audit",
    ]


def broken_with(reason: str) -> Handler[OrderSheetPdf]:
    """A pdf handler that logs a line of markup, then fails its job for good with ``reason``."""

    async def broken(payload: Any, ctx: Any) -> None:
        await ctx.log("looked for <i>the order</i>")
        raise PermanentJobError(reason)

    return broken


def assert_html(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_without_a_session_every_page_redirects_to_sign_in(
    client: httpx.AsyncClient, state: WebState
) -> None:
    job_id = await add(state, "order-1", None)
    for path in pages_of(job_id):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/admin/sign-in?next={quote(path, safe='')}"
    assert (await client.get("/admin")).headers["location"] == "/admin/queues"
    # The sign-in page itself is open, and sends the browser back where it was going.
    page = assert_html(await client.get("/admin/sign-in?next=/admin/audit"))
    assert 'id="sign-in"' in page and 'data-next="/admin/audit"' in page
    assert 'type="password"' in page


async def test_sign_in_returns_to_dashboard_paths_only(client: httpx.AsyncClient) -> None:
    for target in ("//evil.example/admin/", "https://evil.example", "/\\evil.example", "/api/x"):
        page = assert_html(await client.get("/admin/sign-in", params={"next": target}))
        assert 'data-next="/admin/queues"' in page, target
    page = assert_html(await client.get("/admin/sign-in", params={"next": "/admin/queues/pdf"}))
    assert 'data-next="/admin/queues/pdf"' in page


async def test_roles_without_queue_rights_get_a_403_page(
    signed_in: SignedIn, state: WebState
) -> None:
    job_id = await add(state, "order-1", None)
    staff, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    tech, _ = await signed_in(Role.LAB_TECH, CompanyKind.LAB)
    for user_client in (staff, tech):
        for path in pages_of(job_id):
            page = assert_html(await user_client.get(path), 403)
            assert "may not use the queue dashboard" in page, path
            assert job_id not in page


async def test_every_manager_role_opens_every_page(signed_in: SignedIn, state: WebState) -> None:
    for role in MANAGERS:
        user_client, user = await signed_in(role, CompanyKind.LAB)
        job_id = await add(state, f"order-of-{role.value}", user.company_id)
        for path in pages_of(job_id):
            page = assert_html(await user_client.get(path))
            assert user.email in page, (role, path)
        overview = assert_html(await user_client.get("/admin/queues"))
        for queue in QUEUES:
            assert f'data-queue="{queue}"' in overview
            assert f'data-field="{queue}.completed"' in overview
            assert f'data-chart-url="/api/queue/{queue}/throughput?minutes=60"' in overview
        listing = assert_html(await user_client.get("/admin/queues/pdf?state=waiting"))
        assert f'href="/admin/queues/pdf/jobs/{job_id}"' in listing
        job_page = assert_html(await user_client.get(f"/admin/queues/pdf/jobs/{job_id}"))
        assert f"order-of-{role.value}" in job_page  # the payload
        assert "Remove" in job_page and 'data-method="DELETE"' in job_page
        assert "/retry" not in job_page  # a waiting job cannot be retried
        # Pausing a queue is platform_admin's alone; the buttons say so.
        assert ("Pause queue" in listing) is (role is Role.PLATFORM_ADMIN)


async def test_overview_shows_counts_and_health(signed_in: SignedIn, state: WebState) -> None:
    admin, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    for n in range(3):
        await add(state, f"order-{n}", me.company_id)
    page = assert_html(await admin.get("/admin/queues"))
    assert re.search(r'data-field="pdf\.waiting" data-format="int">3<', page)
    # A zero count is marked, so it is shown in a neutral colour, not its state's red.
    assert re.search(r'data-field="email\.waiting" data-format="int" class="zero">0<', page)
    assert re.search(r'data-field="pdf\.failed" data-format="int" class="zero">0<', page)
    assert 'data-stats-url="/api/queue/stats"' in page
    assert 'data-health-url="/api/queue/health"' in page
    assert 'data-field="mode">local<' in page
    assert 'data-field="outbox_pending"' in page
    assert 'data-field="stores.local.reachable"' in page
    assert 'data-field="queues.pdf.oldest_waiting_age_s"' in page
    # No worker process runs in this test: none connected, none per queue.
    assert re.search(
        r'<dt>Workers connected</dt>\s*<dd data-field="workers" data-format="count">0<', page
    )
    assert re.search(r'data-field="queues\.pdf\.workers" data-format="int">0<', page)
    assert "Redis is not configured" in page


async def test_a_job_page_shows_the_failure_as_text(signed_in: SignedIn, state: WebState) -> None:
    admin, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-42", me.company_id)
    await run_pdf_until_failed(state, broken_with(HOSTILE), 1)
    page = assert_html(await admin.get(f"/admin/queues/pdf/jobs/{job_id}"))
    escaped = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; &amp; the order has no lens data"
    assert f'<p class="reason" data-failed-reason>{escaped}</p>' in page
    assert "<script>alert" not in page and "<i>" not in page
    assert "looked for &lt;i&gt;the order&lt;/i&gt;" in page  # the log line, escaped too
    assert "Traceback" not in page  # stack traces are the platform admin's only
    assert "order-42" in page  # the payload
    assert f'data-url="/api/queue/pdf/jobs/{job_id}/retry"' in page
    assert 'data-confirm="Retry job' in page
    listing = assert_html(await admin.get("/admin/queues/pdf?state=failed"))
    assert escaped in listing and "<script>alert" not in listing
    assert 'data-url="/api/queue/pdf/retry-failed"' in listing


async def test_another_companys_job_is_a_404_page(signed_in: SignedIn, state: WebState) -> None:
    mine_client, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    _, other = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    mine = await add(state, "order-mine", me.company_id)
    theirs = await add(state, "order-theirs", other.company_id)
    assert_html(await mine_client.get(f"/admin/queues/pdf/jobs/{mine}"))
    refused = assert_html(await mine_client.get(f"/admin/queues/pdf/jobs/{theirs}"), 404)
    missing = assert_html(await mine_client.get("/admin/queues/pdf/jobs/no-such-job"), 404)
    # Same page whether the job is someone else's or does not exist.
    assert refused == missing
    assert "order-theirs" not in refused and theirs not in refused
    listing = assert_html(await mine_client.get("/admin/queues/pdf"))
    assert mine in listing and theirs not in listing
    # A platform_admin sees every company's jobs.
    assert_html(await platform.get(f"/admin/queues/pdf/jobs/{theirs}"))
    assert_html(await mine_client.get("/admin/queues/sms"), 404)
    assert_html(await mine_client.get("/admin/queues/sms/jobs/1"), 404)


async def test_job_list_pages_and_searches(signed_in: SignedIn, state: WebState) -> None:
    admin, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    ids = [await add(state, f"order-{name}", me.company_id) for name in ("a", "b", "c")]
    first = assert_html(await admin.get("/admin/queues/pdf?state=waiting&limit=2"))
    assert "1\u20132 of 3" in first and ids[2] in first and ids[1] in first and ids[0] not in first
    assert 'href="/admin/queues/pdf?state=waiting&amp;offset=2&amp;limit=2"' in first
    second = assert_html(await admin.get("/admin/queues/pdf?state=waiting&offset=2&limit=2"))
    assert "3\u20133 of 3" in second and ids[0] in second
    assert 'href="/admin/queues/pdf?state=waiting&amp;offset=0&amp;limit=2"' in second
    found = assert_html(await admin.get("/admin/queues/pdf?state=waiting&search=order-b"))
    assert ids[1] in found and ids[0] not in found and ids[2] not in found
    none = assert_html(await admin.get("/admin/queues/pdf?state=failed"))
    assert "No failed jobs" in none
    bad = assert_html(await admin.get("/admin/queues/pdf?state=lost"), 400)
    assert "state" in bad


async def test_audit_page_lists_operations(signed_in: SignedIn, state: WebState) -> None:
    admin, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    await run_pdf_until_failed(state, broken_with("no lens data"), 1)
    assert (await admin.post(f"/api/queue/pdf/jobs/{job_id}/retry")).status_code == 200
    page = assert_html(await admin.get("/admin/audit"))
    assert '<tr data-audit-action="retry">' in page
    assert f'href="/admin/queues/pdf/jobs/{job_id}" data-audit-job>{job_id}</a>' in page
    assert me.email in page
    # Another company's admin does not see it.
    other, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert job_id not in assert_html(await other.get("/admin/audit"))


async def test_pages_carry_the_security_headers_and_no_inline_code(
    client: httpx.AsyncClient, signed_in: SignedIn, state: WebState
) -> None:
    admin, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    responses = [await admin.get(path) for path in pages_of(job_id)]
    responses += [
        await client.get("/admin/sign-in"),
        await client.get("/admin/queues"),  # the redirect
        await admin.get("/admin/queues/sms"),  # an error page
    ]
    for response in responses:
        policy = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["default-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        if response.status_code != 303:
            assert response.headers["cache-control"] == "no-store"
            page = response.text
            # Nothing the policy would block: scripts by src only, no style or on*
            # attributes, and a viewport for phones.
            scripts = re.findall(r"<script[^>]*>", page)
            assert scripts[0] == '<script src="/admin/static/dashboard.js" defer>'
            for script in scripts[1:]:  # a page's own, after the shared one
                assert re.fullmatch(r'<script src="/admin/static/[a-z-]+\.js" defer>', script)
            assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page)
            assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    # The API keeps its own answers: JSON, no dashboard policy.
    api = await admin.get("/api/queue/stats")
    assert api.headers["content-type"] == "application/json"
    assert "content-security-policy" not in api.headers


async def test_static_files_are_served_by_the_app(client: httpx.AsyncClient) -> None:
    script = await client.get("/admin/static/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "X-CSRF-Token" in script.text and "innerHTML" not in script.text
    again = await client.get(
        "/admin/static/dashboard.js", headers={"If-None-Match": script.headers["etag"]}
    )
    assert again.status_code == 304
    forms = await client.get("/admin/static/forms.js")
    assert forms.status_code == 200 and forms.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in forms.text and "window.ILSDashboard" in forms.text
    style = await client.get("/admin/static/dashboard.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert "@media" in style.text
    assert (await client.get("/admin/static/routes.py")).status_code == 404
    assert (await client.get("/admin/static/..%2Froutes.py")).status_code == 404


async def test_overview_in_redis_mode_shows_redis_health(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        secret_key=SECRET_KEY,
        start_workers=False,
    )
    app = create_app(settings, start_workers=False, password_hasher=cheap_hasher())
    try:
        async with app.router.lifespan_context(app):
            factory = Factory(app.state.ils)
            admin = await factory.user(await factory.company(CompanyKind.LAB), Role.ADMIN)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                await sign_in(client, admin.email)
                page = assert_html(await client.get("/admin/queues"))
    finally:
        await delete_prefix(redis_url, redis_prefix)
    assert 'data-field="mode">redis<' in page
    assert 'data-field="redis" data-format="yesno">yes<' in page
    assert re.search(r'data-field="stores\.redis\.reachable"[^>]*>yes<', page)
    assert re.search(r'data-field="stores\.redis\.latency_ms" data-format="ms">[0-9.]+ ms<', page)
    assert re.search(r'data-field="stores\.redis\.used_memory_human">[0-9.]+[KMG]?<', page)
    assert 'data-field="stores.redis.maxmemory_policy">' in page
    assert 'data-field="stores.redis.eviction_safe"' in page
    assert "Redis is not configured" not in page


async def test_a_paused_queue_shows_a_badge_and_offers_only_resume(
    signed_in: SignedIn, state: WebState
) -> None:
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    running = assert_html(await platform.get("/admin/queues/pdf"))
    assert "data-paused-badge" not in running
    assert 'data-url="/api/queue/pdf/pause"' in running
    assert 'data-url="/api/queue/pdf/resume"' not in running

    assert (await platform.post("/api/queue/pdf/pause")).status_code == 204
    paused = assert_html(await platform.get("/admin/queues/pdf"))
    assert re.search(r"<h1>pdf <span class=\"badge state-paused\" data-paused-badge", paused)
    assert 'data-url="/api/queue/pdf/resume"' in paused
    assert 'data-url="/api/queue/pdf/pause"' not in paused
    overview = assert_html(await platform.get("/admin/queues"))
    card = re.search(
        r'<article class="card queue" data-queue="pdf" data-paused>.*?</article>', overview, re.S
    )
    assert card and ">Paused</span>" in card.group(0)
    assert not re.search(r'data-queue="email" data-paused', overview)
    # The health card's per-queue table marks it too; an admin sees it, without buttons.
    assert re.search(r'<th scope="row">pdf <span class="badge state-paused"', overview)
    seen_by_admin = assert_html(await admin.get("/admin/queues/pdf"))
    assert "data-paused-badge" in seen_by_admin and "/resume" not in seen_by_admin

    assert (await platform.post("/api/queue/pdf/resume")).status_code == 204
    again = assert_html(await platform.get("/admin/queues/pdf"))
    assert "data-paused-badge" not in again and 'data-url="/api/queue/pdf/pause"' in again


async def test_state_tabs_count_the_jobs_the_user_may_see(
    signed_in: SignedIn, state: WebState
) -> None:
    admin, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    _, other = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    for n in range(3):
        await add(state, f"order-mine-{n}", me.company_id)
    await add(state, "order-theirs", other.company_id)
    page = assert_html(await admin.get("/admin/queues/pdf?state=failed"))
    tab = (
        r'<a href="/admin/queues/pdf\?state={0}"[^>]*data-state-tab="{0}">'
        r'{0} <span class="count{1}">{2}</span></a>'
    )
    assert re.search(tab.format("waiting", "", 3), page)  # theirs is not counted
    assert re.search(tab.format("failed", " zero", 0), page)  # zero: neutral, not red
    assert 'aria-current="page" data-state-tab="failed"' in page


async def test_the_clean_form_posts_to_the_clean_api_after_confirming(
    signed_in: SignedIn, state: WebState
) -> None:
    admin, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    page = assert_html(await admin.get("/admin/queues/pdf?state=failed"))
    form = re.search(r'<form id="clean-form".*?</form>', page, re.S)
    assert form
    assert 'data-url="/api/queue/pdf/clean"' in form.group(0)
    assert 'data-scope=" made for your company"' in form.group(0)  # the confirmation says so
    states = re.findall(r'<option value="(\w+)"( selected)?>', form.group(0))
    assert [s for s, _ in states][:5] == ["waiting", "completed", "failed", "delayed", "paused"]
    assert ("failed", " selected") in states  # the tab's state is chosen
    assert "active" not in [s for s, _ in states]
    assert '<script src="/admin/static/forms.js" defer>' in page
    # What the form sends is what the API takes (its confirmation runs in the browser).
    job_id = await add(state, "order-old", me.company_id)
    await run_pdf_until_failed(state, broken_with("no lens data"), 1)
    cleaned = await admin.post("/api/queue/pdf/clean", json={"state": "failed", "older_than_s": 0})
    assert cleaned.json() == {"count": 1}
    assert job_id not in assert_html(await admin.get("/admin/queues/pdf?state=failed"))


async def test_a_job_page_names_the_company_and_labels_traces_by_attempt(
    signed_in: SignedIn, state: WebState, factory: Factory
) -> None:
    company = await factory.company(CompanyKind.LAB, name="Lens & Co <Berlin>")
    # The platform admin: only they see stack traces (tests/web/test_infra_redaction.py).
    admin, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-7", company.id, attempts=2, backoff_delay_ms=1)

    async def flaky(payload: Any, ctx: Any) -> None:
        await ctx.log(f"attempt {ctx.attempt} looked up the order")
        raise RuntimeError(f"lens data missing on attempt {ctx.attempt}")

    await run_pdf_until_failed(state, flaky, 1)
    page = assert_html(await admin.get(f"/admin/queues/pdf/jobs/{job_id}"))
    assert '<dd class="wrap" data-company>Lens &amp; Co &lt;Berlin&gt;</dd>' in page
    assert company.id not in page  # the name, not the 32-character id
    attempts = re.findall(
        r"<h4>(Attempt \d)( <small class=\"muted\">\(latest\)</small>)?</h4>\s*"
        r"<pre class=\"trace\">([^<]*)</pre>",
        page,
    )
    assert [(label, bool(latest)) for label, latest, _ in attempts] == [
        ("Attempt 1", False),
        ("Attempt 2", True),
    ]
    assert "attempt 1" in attempts[0][2] and "attempt 2" in attempts[1][2]
    # Log lines carry the attempt that wrote them, shown as a label.
    logged = re.findall(
        r'<li><span class="badge attempt">Attempt (\d)</span> <code>([^<]*)</code></li>', page
    )
    assert logged == [
        ("1", "attempt 1 looked up the order"),
        ("2", "attempt 2 looked up the order"),
    ]
    # Times are <time> elements the script makes relative; UTC in the title meanwhile.
    assert re.search(
        r'<dt>Created</dt><dd><time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z" '
        r'title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC" data-relative>',
        page,
    )


def test_traces_are_numbered_by_attempt_or_in_order_after_a_retry() -> None:
    assert traces_by_attempt([], 0) == []
    assert traces_by_attempt(["a", "b"], 2) == [("Attempt 1", "a"), ("Attempt 2", "b")]
    # A stackTraceLimit of 2 kept the newest two of five attempts.
    assert traces_by_attempt(["d", "e"], 5) == [("Attempt 4", "d"), ("Attempt 5", "e")]
    # Retried by hand: the attempt counter restarted, the traces stayed.
    assert traces_by_attempt(["a", "b", "c"], 1) == [
        ("Failure 1 of 3", "a"),
        ("Failure 2 of 3", "b"),
        ("Failure 3 of 3", "c"),
    ]


async def test_job_lists_and_the_audit_log_label_their_cells_for_phones(
    signed_in: SignedIn, state: WebState
) -> None:
    admin, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    listing = assert_html(await admin.get("/admin/queues/pdf"))
    row = re.search(rf'<tr data-job-id="{job_id}">.*?</tr>', listing, re.S)
    assert row
    labels = re.findall(r'data-label="([^"]+)"', row.group(0))
    assert labels == ["Job", "Name", "Attempts", "Created", "Finished", "Reason"]
    assert '<div class="table-wrap cards">' in listing
    assert (await admin.delete(f"/api/queue/pdf/jobs/{job_id}")).status_code == 204
    audit = assert_html(await admin.get("/admin/audit"))
    entry = re.search(r'<tr data-audit-action="remove">.*?</tr>', audit, re.S)
    assert entry
    labels = re.findall(r'data-label="([^"]+)"', entry.group(0))
    assert labels == ["When", "Who", "Action", "Queue", "Job", "Detail", "From"]
    assert "<time datetime=" in entry.group(0)
