"""The live notification stream over real HTTP, fed by a worker in another process.

``ils serve --no-workers`` answers the browsers; ``ils worker --queues notification``
runs the jobs; the test enqueues with its own job system on the same settings. So
every notification crosses two process boundaries: worker → web (Redis pub/sub in
Redis mode, the database poll in local mode) → browser. httpx's ASGI transport
buffers whole responses, hence the real server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import Notification
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from ils.web.security import CSRF_HEADER
from tests.conftest import delete_prefix, free_port
from tests.support.serving import until_serving
from tests.web.conftest import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
#: Generous for a loaded CI machine; bench/notifications.py measures the real delay.
DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Stream:
    """One connected browser: the events it has received, in order."""

    response: httpx.Response
    events: list[dict[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        event: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            if line.startswith("retry:"):
                self.connected.set()
            elif line == "" and "data" in event:
                self.events.append({"id": event.get("id"), **json.loads(event["data"])})
                event = {}
            elif ":" in line and not line.startswith(":"):
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")

    def titles(self) -> list[str]:
        return [str(event["title"]) for event in self.events]

    async def wait_for(self, count: int) -> None:
        await eventually(
            lambda: len(self.events) >= count,
            DELIVERY_TIMEOUT_S,
            interval=0.02,
            message=lambda: f"got {self.titles()}, wanted {count} events",
        )


@dataclass
class Platform:
    """The running web and worker processes, two signed-in users, a job system."""

    base: str
    system: JobSystem
    ann: str
    bob: str
    clients: dict[str, httpx.AsyncClient]

    @asynccontextmanager
    async def stream(self, who: str, last_event_id: str | None = None) -> AsyncIterator[Stream]:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        client = self.clients[who]
        async with client.stream("GET", "/api/notifications/stream", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = Stream(response)
            reader = asyncio.create_task(stream.read())
            try:
                await asyncio.wait_for(stream.connected.wait(), DELIVERY_TIMEOUT_S)
                yield stream
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def notify(self, user_id: str, title: str) -> None:
        await self.system.helpers.queue_system_notification(user_id, title, f"About {title}.")

    async def stored(self, count: int) -> None:
        """Wait until ``count`` notifications are in the database."""
        sessions = session_factory(self.system.engine)
        seen: int | None = None

        async def all_stored() -> bool:
            nonlocal seen
            async with sessions() as session:
                seen = await session.scalar(select(func.count()).select_from(Notification))
            return seen == count

        await eventually(
            all_stored,
            DELIVERY_TIMEOUT_S,
            interval=0.05,
            message=lambda: f"{count} notifications never stored: {seen} in the database",
        )


async def _seed(settings: Settings) -> tuple[str, str]:
    """Two users of two companies; returns their ids."""
    system = await JobSystem.open(settings)  # migrates the embedded database
    await system.close()
    engine = create_engine(settings.effective_database_url)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    try:
        async with session_factory(engine)() as session, session.begin():
            ids = []
            for name, email in (("Ann", "ann@lab.example"), ("Bob", "bob@practice.example")):
                company = Company(kind=CompanyKind.LAB, name=f"{name}'s company")
                session.add(company)
                await session.flush()
                user = User(
                    company_id=company.id,
                    email=email,
                    name=name,
                    password_hash=hashed,
                    role=Role.STAFF,
                )
                session.add(user)
                await session.flush()
                ids.append(user.id)
        return ids[0], ids[1]
    finally:
        await engine.dispose()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ils", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(params=["local", "redis", "postgres"])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Platform]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env.update(
        {
            "ILS_DATA_DIR": str(tmp_path / "var"),
            "ILS_LOCAL_POLL_INTERVAL_MS": "20",
            "ILS_LOG_LEVEL": "WARNING",
            # Required as soon as Redis or PostgreSQL is configured (ils.secret_key).
            "ILS_SECRET_KEY": SECRET_KEY,
        }
    )
    if request.param == "redis":
        env["ILS_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["ILS_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    if request.param == "postgres":
        env["ILS_DATABASE_URL"] = request.getfixturevalue("pg_url")
        await upgrade_database(env["ILS_DATABASE_URL"])
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        database_url=env.get("ILS_DATABASE_URL", ""),
        redis_url=env.get("ILS_REDIS_URL"),
        redis_prefix=env.get("ILS_REDIS_PREFIX", "bull"),
    )
    ann, bob = await _seed(settings)
    port = free_port()
    log = tmp_path / "processes.log"
    web = _spawn(["serve", "--no-workers", "--port", str(port)], env, log)
    worker = _spawn(["worker", "--queues", "notification"], env, log)
    base = f"http://127.0.0.1:{port}"
    clients: dict[str, httpx.AsyncClient] = {}
    system = await JobSystem.open(settings)
    try:
        await until_serving(base, web, log.read_text)
        for who, email in (("ann", "ann@lab.example"), ("bob", "bob@practice.example")):
            client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=None))
            signed = await client.post(
                "/api/auth/sign-in", json={"email": email, "password": PASSWORD}
            )
            assert signed.status_code == 200, signed.text
            client.headers[CSRF_HEADER] = signed.json()["csrf_token"]
            clients[who] = client
        yield Platform(base, system, ann, bob, clients)
    finally:
        for client in clients.values():
            await client.aclose()
        await system.close()
        _stop(worker)
        _stop(web)
        if request.param == "redis":
            await delete_prefix(env["ILS_REDIS_URL"], env["ILS_REDIS_PREFIX"])
    assert "Traceback" not in log.read_text(), log.read_text()


async def test_a_worker_processs_notification_reaches_only_its_users_stream(
    platform: Platform,
) -> None:
    async with platform.stream("ann") as ann, platform.stream("bob") as bob:
        await platform.notify(platform.ann, "for Ann 1")
        await ann.wait_for(1)
        (event,) = ann.events
        assert event["title"] == "for Ann 1"
        assert event["message"] == "About for Ann 1."
        assert (event["kind"], event["priority"], event["read"]) == ("system", "medium", False)
        assert event["id"] == event["id"] and len(str(event["id"])) == 32

        # Bob's own notification comes after Ann's: had Ann's reached Bob's stream, it
        # would be there first.
        await platform.notify(platform.bob, "for Bob 1")
        await bob.wait_for(1)
        assert bob.titles() == ["for Bob 1"]
        await platform.notify(platform.ann, "for Ann 2")
        await ann.wait_for(2)
        assert ann.titles() == ["for Ann 1", "for Ann 2"]
        assert bob.titles() == ["for Bob 1"]


async def test_reconnecting_with_last_event_id_replays_what_was_missed(
    platform: Platform,
) -> None:
    async with platform.stream("ann") as first:
        await platform.notify(platform.ann, "seen 1")
        await platform.notify(platform.ann, "seen 2")
        await first.wait_for(2)
        assert first.titles() == ["seen 1", "seen 2"]
        last_id = str(first.events[1]["id"])
    # Disconnected: two more arrive, and one for Bob.
    await platform.notify(platform.ann, "missed 1")
    await platform.notify(platform.bob, "not Ann's")
    await platform.notify(platform.ann, "missed 2")
    await platform.stored(5)
    async with platform.stream("ann", last_event_id=last_id) as again:
        await again.wait_for(2)
        assert again.titles() == ["missed 1", "missed 2"]
        # And it stays live after the replay.
        await platform.notify(platform.ann, "live")
        await again.wait_for(3)
        assert again.titles() == ["missed 1", "missed 2", "live"]
    # Without Last-Event-ID a new stream sends only what is new.
    async with platform.stream("ann") as fresh:
        await platform.notify(platform.ann, "newest")
        await fresh.wait_for(1)
        assert fresh.titles() == ["newest"]
    # Someone else's event id replays nothing of theirs: it counts as no id.
    async with platform.stream("bob") as bob:
        assert bob.events == []
    async with platform.stream("bob", last_event_id=last_id) as bob:
        await platform.notify(platform.bob, "Bob's")
        await bob.wait_for(1)
        assert bob.titles() == ["Bob's"]


async def test_more_browsers_connecting_at_once_than_the_pool_has_connections(
    platform: Platform,
) -> None:
    """60 streams opened together (the pool holds 15): each is answered, none waits
    for a second connection while holding one."""
    client = platform.clients["ann"]

    async def connect() -> int:
        async with client.stream("GET", "/api/notifications/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    break
            return response.status_code

    codes = await asyncio.wait_for(asyncio.gather(*(connect() for _ in range(60))), 40)
    assert codes == [200] * 60


async def test_the_stream_needs_a_session(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.base, timeout=5) as anonymous:
        response = await anonymous.get("/api/notifications/stream")
    assert response.status_code == 401
    assert response.json() == {"detail": "not signed in"}
