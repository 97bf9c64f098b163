"""Sign-in throttling (issue 23): per account and per client address, kept in the
database, with growing delays, a temporary lock, its audit and an admin's unlock.

The app here runs with small numbers (:data:`RULES`) so a lock takes a handful of
attempts; the clock is the test clock, pushed forward instead of waiting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ils.domain.audit import AuditEntry
from ils.domain.companies import CompanyKind, Role
from ils.domain.sign_in_throttle import SignInThrottle
from ils.limit_settings import SignInSettings
from ils.settings import Settings
from ils.web.routers.auth import LOCKED, TOO_SOON, WRONG_CREDENTIALS
from tests.web.conftest import (
    BASE_URL,
    PASSWORD,
    SECRET_KEY,
    DbMaker,
    Factory,
    SignedIn,
    TestClock,
)

ROOT = Path(__file__).resolve().parents[2]
#: Three free failures, then 1 s, 2 s; the sixth locks for 15 minutes. An address
#: gets eight free failures and is locked at the twelfth.
RULES = SignInSettings(
    free_attempts=3,
    base_delay_s=1,
    max_delay_s=60,
    lock_after=6,
    lock_duration_s=900,
    address_free_attempts=8,
    address_lock_after=12,
)
LOCK_MS = 900_000


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The conftest's app gets :data:`RULES`."""
    return settings.model_copy(update={"sign_in": RULES})


@pytest.fixture
async def from_address(app: FastAPI) -> AsyncIterator[Any]:
    """``from_address(ip)``: a client whose requests come from ``ip``."""
    made: list[httpx.AsyncClient] = []

    def make(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def attempt(
    client: httpx.AsyncClient,
    email: str,
    password: str = "wrong",  # noqa: S107
) -> httpx.Response:
    return await client.post("/api/auth/sign-in", json={"email": email, "password": password})


def seen(response: httpx.Response) -> tuple[int, Any, str | None]:
    """What a client learns from an answer: status, body, Retry-After."""
    return response.status_code, response.json(), response.headers.get("retry-after")


async def audit_rows(db: DbMaker, action: str) -> list[AuditEntry]:
    async with db() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.at)
        )
        return list(rows)


async def test_twenty_wrong_passwords_in_a_row_meet_a_429(
    factory: Factory, from_address: Any
) -> None:
    """The reproduction: 193 wrong passwords in 60 s were all verified."""
    user = await factory.user(await factory.company())
    client = from_address("198.51.100.7")
    answers = [await attempt(client, user.email) for _ in range(20)]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, [answer.status_code for answer in answers]
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in refused)
    # Refused attempts were never checked: the password would not have helped.
    right = await attempt(client, user.email, PASSWORD)
    assert right.status_code == 429


async def test_delays_double_then_a_lock_that_lifts_after_its_time(
    factory: Factory, from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    user = await factory.user(await factory.company())
    client = from_address("198.51.100.8")
    for _ in range(RULES.free_attempts):
        assert seen(await attempt(client, user.email)) == (401, {"detail": WRONG_CREDENTIALS}, None)
    waits = []
    for _ in range(2):
        assert (await attempt(client, user.email)).status_code == 401
        status, body, wait = seen(await attempt(client, user.email, PASSWORD))
        assert (status, body) == (429, {"detail": TOO_SOON})
        assert wait is not None
        waits.append(int(wait))
        clock.advance(int(wait) * 1000)
    assert waits == [1, 2]
    # The sixth failure locks: even the right password is refused, with the lock's time.
    assert (await attempt(client, user.email)).status_code == 401
    assert seen(await attempt(client, user.email, PASSWORD)) == (429, {"detail": LOCKED}, "900")
    clock.advance(LOCK_MS - 1000)
    assert seen(await attempt(client, user.email, PASSWORD)) == (429, {"detail": LOCKED}, "1")
    clock.advance(1000)
    assert (await attempt(client, user.email, PASSWORD)).status_code == 200

    (lock,) = await audit_rows(db, "sign-in-lock")
    assert (lock.user_email, lock.company_id, lock.ip) == (
        user.email,
        user.company_id,
        "198.51.100.8",
    )
    assert lock.detail["scope"] == "account" and lock.detail["failures"] == RULES.lock_after
    (lapsed,) = await audit_rows(db, "sign-in-unlock")
    assert lapsed.detail["by"] == "expiry" and lapsed.detail["subject"] == user.email


async def test_unknown_and_known_emails_answer_alike_under_throttling(
    factory: Factory, from_address: Any, clock: TestClock
) -> None:
    """Whether an e-mail has an account never shows: same statuses, bodies and waits,
    the lock included (the real account even with its right password)."""
    user = await factory.user(await factory.company(), email="real@example.com")
    known, unknown = from_address("203.0.113.1"), from_address("203.0.113.2")
    answers: dict[str, list[tuple[int, Any, str | None]]] = {"known": [], "unknown": []}
    for step in range(12):
        for name, client, email in (
            ("known", known, user.email),
            ("unknown", unknown, "nobody@example.com"),
        ):
            answers[name].append(seen(await attempt(client, email)))
        if step % 3 == 2:
            clock.advance(2000)
    assert answers["known"] == answers["unknown"]
    statuses = [status for status, _, _ in answers["known"]]
    assert 401 in statuses and 429 in statuses
    assert answers["known"][-2] == (429, {"detail": LOCKED}, "900")
    with_password = seen(await attempt(known, "Real@Example.com ", PASSWORD))
    assert with_password == seen(await attempt(unknown, "nobody@example.com", PASSWORD))
    assert with_password[:2] == (429, {"detail": LOCKED})


async def test_a_successful_sign_in_resets_the_accounts_count(
    factory: Factory, from_address: Any
) -> None:
    user = await factory.user(await factory.company())
    client = from_address("198.51.100.9")
    for _ in range(RULES.free_attempts):
        assert (await attempt(client, user.email)).status_code == 401
    assert (await attempt(client, user.email, PASSWORD)).status_code == 200
    # Free again: three failures without a delay, the fourth makes the next one wait.
    for _ in range(RULES.free_attempts + 1):
        assert (await attempt(client, user.email)).status_code == 401
    assert (await attempt(client, user.email)).status_code == 429


async def test_one_address_guessing_many_accounts_is_throttled_and_locked(
    from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    sprayer, other = from_address("192.0.2.66"), from_address("192.0.2.67")
    for n in range(RULES.address_free_attempts + 1):
        assert (await attempt(sprayer, f"guess{n}@example.com")).status_code == 401
    refused = await attempt(sprayer, "fresh@example.com")
    assert seen(refused) == (429, {"detail": TOO_SOON}, "1")
    # The same e-mail from elsewhere is not held up: the address is.
    assert (await attempt(other, "fresh@example.com")).status_code == 401
    for n in range(RULES.address_free_attempts + 1, RULES.address_lock_after):
        clock.advance(60_000)
        assert (await attempt(sprayer, f"guess{n}@example.com")).status_code == 401
    assert seen(await attempt(sprayer, "new@example.com")) == (429, {"detail": LOCKED}, "900")
    (lock,) = await audit_rows(db, "sign-in-lock")
    assert lock.detail == {
        "scope": "address",
        "subject": "192.0.2.66",
        "failures": RULES.address_lock_after,
        "until": lock.detail["until"],
    }
    assert (lock.company_id, lock.ip) == ("", "192.0.2.66")


async def _lock(client: httpx.AsyncClient, email: str, clock: TestClock) -> None:
    for _ in range(RULES.lock_after):
        assert (await attempt(client, email)).status_code == 401
        clock.advance(60_000)
    assert (await attempt(client, email, PASSWORD)).json() == {"detail": LOCKED}


async def test_admins_unlock_their_companys_accounts_audited(
    factory: Factory, signed_in: SignedIn, from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    practice = await factory.company(CompanyKind.PRACTICE)
    user = await factory.user(practice)
    attacker = from_address("198.51.100.10")
    await _lock(attacker, user.email, clock)
    unlock = "/api/auth/sign-in-locks/unlock"
    body = {"email": user.email.upper()}

    staff, _ = await signed_in(Role.STAFF, company=practice)
    assert (await staff.post(unlock, json=body)).status_code == 403
    stranger, _ = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    assert seen(await stranger.post(unlock, json=body)) == (404, {"detail": "not found"}, None)
    # An unknown e-mail answers a company admin the same 404.
    missing = await stranger.post(unlock, json={"email": "nobody@example.com"})
    assert missing.status_code == 404
    addresses = await stranger.post(unlock, json={"address": "198.51.100.10"})
    assert addresses.status_code == 403
    assert (await attempt(attacker, user.email, PASSWORD)).status_code == 429

    manager, admin = await signed_in(Role.COMPANY_ADMIN, company=practice)
    assert (await manager.post(unlock, json=body)).json() == {"unlocked": True}
    assert (await attempt(attacker, user.email, PASSWORD)).status_code == 200
    assert (await manager.post(unlock, json=body)).json() == {"unlocked": False}

    (entry,) = await audit_rows(db, "sign-in-unlock")
    assert (entry.user_id, entry.user_email, entry.company_id) == (
        admin.id,
        admin.email,
        practice.id,
    )
    assert entry.detail["by"] == "admin" and entry.detail["was_locked"] is True
    assert entry.detail["subject"] == user.email


async def test_the_platform_admin_unlocks_any_email_and_address(
    factory: Factory, signed_in: SignedIn, from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    attacker = from_address("198.51.100.11")
    await _lock(attacker, "ghost@example.com", clock)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    unlock = "/api/auth/sign-in-locks/unlock"
    response = await platform.post(unlock, json={"email": "ghost@example.com"})
    assert response.json() == {"unlocked": True}
    assert (await attempt(attacker, "ghost@example.com")).status_code == 401
    response = await platform.post(unlock, json={"address": "198.51.100.11"})
    assert response.json() == {"unlocked": True}
    async with db() as session:
        assert (
            await session.scalar(
                select(SignInThrottle).where(SignInThrottle.subject == "198.51.100.11")
            )
            is None
        )
    invalid = await platform.post(unlock, json={"email": "a@b.c", "address": "1.2.3.4"})
    assert invalid.status_code == 422
    assert len(await audit_rows(db, "sign-in-unlock")) == 2


async def test_ils_unlock_sign_in_lifts_a_lock_from_the_command_line(
    settings: Settings, factory: Factory, from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    user = await factory.user(await factory.company())
    attacker = from_address("198.51.100.12")
    await _lock(attacker, user.email, clock)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env.update(
        {
            "ILS_DATA_DIR": str(settings.data_dir),
            "ILS_DATABASE_URL": settings.database_url,
            "ILS_SECRET_KEY": SECRET_KEY,
            "ILS_LOG_LEVEL": "WARNING",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "ils", "unlock-sign-in", user.email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{user.email}: unlocked" in done.stdout
    assert (await attempt(attacker, user.email, PASSWORD)).status_code == 200
    (entry,) = await audit_rows(db, "sign-in-unlock")
    assert (entry.user_email, entry.company_id) == ("ils unlock-sign-in", user.company_id)


async def test_forgotten_failures_are_purged_and_counted_afresh(
    from_address: Any, clock: TestClock, db: DbMaker
) -> None:
    client = from_address("198.51.100.13")
    for _ in range(RULES.free_attempts + 1):
        assert (await attempt(client, "old@example.com")).status_code == 401
    clock.advance(LOCK_MS + 1000)
    assert (await attempt(client, "new@example.com")).status_code == 401
    async with db() as session:
        rows = await session.scalars(select(SignInThrottle.subject))
        assert set(rows) == {"new@example.com", "198.51.100.13"}
    # The old account starts afresh: its free failures again, without a delay.
    for _ in range(RULES.free_attempts):
        assert (await attempt(client, "old@example.com")).status_code == 401
