"""``/api/notifications``: the signed-in user's own notifications, on SQLite and PostgreSQL.

The live stream needs a real server (httpx's ASGI transport buffers whole responses):
see ``tests/web/test_notification_stream.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from ils.domain.companies import CompanyKind, Role, User
from ils.domain.content import Notification, NotificationPriority
from tests.web.conftest import DbMaker, Factory, SignedIn

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def note(user: User, n: int, **fields: object) -> Notification:
    values: dict[str, object] = {
        "company_id": user.company_id,
        "user_id": user.id,
        "kind": "order",
        "priority": NotificationPriority.MEDIUM,
        "title": f"Notification {n}",
        "message": f"Message {n}",
        "link": f"/orders/{n}",
        "created_at": T0 + timedelta(minutes=n),
        "job_id": f"job-{user.id[:8]}-{n}",
        **fields,
    }
    return Notification(**values)


async def test_without_a_session_every_route_answers_401(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/notifications"),
        ("GET", "/api/notifications/unread-count"),
        ("GET", "/api/notifications/stream"),
        ("POST", "/api/notifications/read-all"),
        ("POST", "/api/notifications/abc/read"),
        ("DELETE", "/api/notifications/abc"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"detail": "not signed in"}


async def test_list_is_mine_only_unread_first_then_newest(
    factory: Factory, signed_in: SignedIn
) -> None:
    me_client, me = await signed_in(Role.LAB_TECH, CompanyKind.LAB)
    _, colleague = await signed_in(Role.STAFF, CompanyKind.LAB)
    read_at = T0 + timedelta(hours=5)
    await factory.add(
        note(me, 1),
        note(me, 2, read_at=read_at),
        note(me, 3),
        note(me, 4, read_at=read_at),
        note(colleague, 5),
    )
    response = await me_client.get("/api/notifications")
    assert response.status_code == 200
    body = response.json()
    assert [item["title"] for item in body["items"]] == [
        "Notification 3",
        "Notification 1",
        "Notification 4",
        "Notification 2",
    ]
    assert body["total"] == 4
    first = body["items"][0]
    assert first["read"] is False and first["read_at"] is None
    assert (first["kind"], first["priority"], first["link"]) == ("order", "medium", "/orders/3")
    assert body["items"][2]["read"] is True


async def test_filters_and_paging(factory: Factory, signed_in: SignedIn) -> None:
    client, me = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    await factory.add(
        note(me, 1, kind="system", priority=NotificationPriority.URGENT),
        note(me, 2, kind="marketplace", priority=NotificationPriority.HIGH),
        note(me, 3, kind="order", read_at=T0 + timedelta(days=1)),
        note(me, 4, kind="order", priority=NotificationPriority.LOW),
    )

    async def titles(query: str) -> list[str]:
        response = await client.get(f"/api/notifications?{query}")
        assert response.status_code == 200, response.text
        return [item["title"] for item in response.json()["items"]]

    assert await titles("unread=true") == ["Notification 4", "Notification 2", "Notification 1"]
    assert await titles("unread=false") == ["Notification 3"]
    assert await titles("kind=order") == ["Notification 4", "Notification 3"]
    assert await titles("priority=urgent") == ["Notification 1"]
    assert await titles("limit=2&offset=1") == ["Notification 2", "Notification 1"]
    page = (await client.get("/api/notifications?limit=1")).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 1, 0)
    for bad in ("kind=spam", "priority=normal", "limit=0", "offset=-1", "unread=perhaps"):
        response = await client.get(f"/api/notifications?{bad}")
        assert response.status_code == 422, bad


async def test_unread_count_mark_one_and_all_read(
    factory: Factory, signed_in: SignedIn, db: DbMaker
) -> None:
    client, me = await signed_in(Role.ADMIN, CompanyKind.LAB)
    other_client, other = await signed_in(Role.ADMIN, CompanyKind.LAB)
    mine = [note(me, n) for n in range(1, 4)]
    theirs = note(other, 9)
    await factory.add(*mine, theirs)

    async def unread(c: httpx.AsyncClient) -> int:
        response = await c.get("/api/notifications/unread-count")
        assert response.status_code == 200
        return int(response.json()["unread"])

    assert await unread(client) == 3
    response = await client.post(f"/api/notifications/{mine[0].id}/read")
    assert response.status_code == 200
    first_read = response.json()["read_at"]
    assert response.json()["read"] is True and first_read is not None
    # Idempotent: the first time stays.
    again = await client.post(f"/api/notifications/{mine[0].id}/read")
    assert again.json()["read_at"] == first_read
    assert await unread(client) == 2

    # Someone else's notification: 404, as if it did not exist, and unchanged.
    assert (await client.post(f"/api/notifications/{theirs.id}/read")).status_code == 404
    assert (await client.post("/api/notifications/nope/read")).status_code == 404

    response = await client.post("/api/notifications/read-all")
    assert response.status_code == 200 and response.json() == {"marked": 2}
    assert await unread(client) == 0
    assert await unread(other_client) == 1
    async with db() as session:
        row = await session.get(Notification, theirs.id)
        assert row is not None and row.read_at is None


async def test_delete_my_notification_only(
    factory: Factory, signed_in: SignedIn, db: DbMaker
) -> None:
    client, me = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    _, other = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    mine, theirs = note(me, 1), note(other, 2)
    await factory.add(mine, theirs)
    assert (await client.delete(f"/api/notifications/{theirs.id}")).status_code == 404
    response = await client.delete(f"/api/notifications/{mine.id}")
    assert response.status_code == 204
    assert (await client.delete(f"/api/notifications/{mine.id}")).status_code == 404
    async with db() as session:
        assert await session.get(Notification, mine.id) is None
        assert await session.get(Notification, theirs.id) is not None


async def test_changes_need_the_csrf_token(factory: Factory, signed_in: SignedIn) -> None:
    client, me = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    mine = note(me, 1)
    await factory.add(mine)
    del client.headers["X-CSRF-Token"]
    for method, path in (
        ("POST", "/api/notifications/read-all"),
        ("POST", f"/api/notifications/{mine.id}/read"),
        ("DELETE", f"/api/notifications/{mine.id}"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 403, (method, path)
    assert (await client.get("/api/notifications/unread-count")).json() == {"unread": 1}
