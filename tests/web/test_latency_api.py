"""``GET /api/queue/{queue}/latency`` on SQLite and PostgreSQL: who may, the body's
shape, and figures that match the jobs the store holds."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.jobs.model import JobRecord
from ils.web.state import WebState
from tests.web.conftest import SignedIn

MINUTE = 60_000


def minute_of(ms: int) -> str:
    return datetime.fromtimestamp(ms // MINUTE * 60, UTC).isoformat()


async def finish_three(state: WebState) -> list[JobRecord]:
    """Two completed pdf jobs and a failed one, as a worker would leave them."""
    system = state.system
    for n in range(3):
        await system.helpers.queue_order_sheet_pdf(f"order-{n}")
    store = system.local
    ids = []
    for outcome in ("done", "done", "failed"):
        fetched = await store.fetch("pdf", f"token-{outcome}")
        assert fetched.job is not None
        ids.append(fetched.job.id)
        if outcome == "done":
            await store.complete("pdf", fetched.job, None, fetch_next=False)
        else:
            await store.fail("pdf", fetched.job, "broken", None, retry=False)
    records = [await store.get_job("pdf", job_id) for job_id in ids]
    assert all(record is not None for record in records)
    return [record for record in records if record is not None]


async def test_latency_per_minute_matches_the_finished_jobs(
    signed_in: SignedIn, state: WebState
) -> None:
    records = await finish_three(state)
    admin, _ = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    response = await admin.get("/api/queue/pdf/latency")
    assert response.status_code == 200
    body = response.json()
    assert (body["queue"], body["window"], body["bucket_s"]) == ("pdf", "hour", 60)
    assert (body["stores"], body["unavailable"]) == (["local"], [])
    points = body["points"]
    assert len(points) == 60
    assert points == sorted(points, key=lambda point: point["at"])
    assert sum(point["jobs"] for point in points) == 3
    # Each minute's nearest-rank p50 and p95 of the jobs that finished in it.
    by_minute: dict[str, list[JobRecord]] = {}
    for record in records:
        assert record.finished_at_ms and record.processed_at_ms
        by_minute.setdefault(minute_of(record.finished_at_ms), []).append(record)
    shown = {datetime.fromisoformat(p["at"]).isoformat(): p for p in points}
    for minute, finished in by_minute.items():
        waits = sorted((r.processed_at_ms or 0) - r.created_at_ms for r in finished)
        runs = sorted((r.finished_at_ms or 0) - (r.processed_at_ms or 0) for r in finished)
        point = shown[minute]
        assert point["jobs"] == len(finished)
        middle = (len(finished) - 1) // 2
        assert (point["wait_p50_ms"], point["wait_p95_ms"]) == (waits[middle], waits[-1])
        assert (point["run_p50_ms"], point["run_p95_ms"]) == (runs[middle], runs[-1])
    quiet = [p for p in points if not p["jobs"]]
    assert quiet and all(p["wait_p50_ms"] is None and p["run_p95_ms"] is None for p in quiet)


async def test_the_day_in_quarter_hours_and_bad_requests(
    signed_in: SignedIn, state: WebState, client: httpx.AsyncClient
) -> None:
    await finish_three(state)
    admin, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    day = (await admin.get("/api/queue/pdf/latency", params={"window": "day"})).json()
    assert (day["window"], day["bucket_s"], len(day["points"])) == ("day", 900, 96)
    assert sum(point["jobs"] for point in day["points"]) == 3
    assert day["points"][-1]["jobs"] + day["points"][-2]["jobs"] == 3  # this quarter (or the last)
    empty = (await admin.get("/api/queue/email/latency")).json()
    assert all(point["jobs"] == 0 for point in empty["points"])
    assert (await admin.get("/api/queue/pdf/latency?window=week")).status_code == 422
    assert (await admin.get("/api/queue/sms/latency")).status_code == 404
    assert (await client.get("/api/queue/pdf/latency")).status_code == 401
    for role, kind in ((Role.STAFF, CompanyKind.PRACTICE), (Role.LAB_TECH, CompanyKind.LAB)):
        user, _ = await signed_in(role, kind)
        assert (await user.get("/api/queue/pdf/latency")).status_code == 403
