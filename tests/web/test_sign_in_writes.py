"""A sign-in checks the password after a read and before its write transaction.

On SQLite a write transaction holds the database's only write lock, and argon2 takes
tens of milliseconds: held through the check, every sign-in stopped every other write
of the platform (found with ``bench/server_timing`` under ``bench/users.py``,
2026-12-07). Guesses made in parallel must still not all be answered.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ils.domain.companies import Company, CompanyKind
from ils.settings import Settings
from ils.web.state import WebState
from tests.web.conftest import PASSWORD, ClientMaker, Factory, TestClock
from tests.web.test_sign_in_throttle import RULES, attempt

#: Longest a step may take; only reached when a sign-in holds the others up.
WAIT_S = 10.0
EMAIL = "held@example.com"


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Three free failures, then a delay (``test_sign_in_throttle.RULES``)."""
    return settings.model_copy(update={"sign_in": RULES})


class HeldCheck:
    """Holds the app's password check of ``password`` until :attr:`release` is set."""

    def __init__(self, state: WebState, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
        self.checking = asyncio.Event()
        self.release = asyncio.Event()
        verify = state.passwords.verify

        async def held(password_hash: str, given: str) -> bool:
            if given == password:
                self.checking.set()
                await self.release.wait()
            return await verify(password_hash, given)

        monkeypatch.setattr(state.passwords, "verify", held)


async def _write(state: WebState) -> None:
    """A write of the process's background kind: its write turn and SQLite's lock."""
    async with state.transactions.write() as session:
        session.add(Company(kind=CompanyKind.PRACTICE, name="Written meanwhile"))


async def test_other_writes_go_on_while_a_sign_in_checks_its_password(
    state: WebState,
    factory: Factory,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await factory.user(await factory.company(), email=EMAIL)
    held = HeldCheck(state, monkeypatch, PASSWORD)
    sign_in = asyncio.create_task(attempt(client, EMAIL, PASSWORD))
    try:
        await asyncio.wait_for(held.checking.wait(), WAIT_S)
        await asyncio.wait_for(_write(state), WAIT_S)
    finally:
        held.release.set()
    assert (await sign_in).status_code == 200


async def test_a_guess_counted_during_a_check_gets_that_check_refused(
    state: WebState,
    factory: Factory,
    make_client: ClientMaker,
    clock: TestClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The right password, checked while a wrong guess is counted (the account's
    fourth failure, which delays the next attempt), is answered 429 as if it had come
    after that guess: a parallel guess is never answered out of turn."""
    await factory.user(await factory.company(), email=EMAIL)
    guesser, owner = make_client(), make_client()
    for _ in range(RULES.free_attempts):
        assert (await attempt(guesser, EMAIL)).status_code == 401
    held = HeldCheck(state, monkeypatch, PASSWORD)
    right = asyncio.create_task(attempt(owner, EMAIL, PASSWORD))
    try:
        await asyncio.wait_for(held.checking.wait(), WAIT_S)
        assert (await asyncio.wait_for(attempt(guesser, EMAIL), WAIT_S)).status_code == 401
    finally:
        held.release.set()
    answer = await right
    assert answer.status_code == 429
    assert "Retry-After" in answer.headers
    # Nothing was learned, and the owner signs in once the delay has passed.
    clock.advance(RULES.base_delay_s * 1000)
    assert (await attempt(owner, EMAIL, PASSWORD)).status_code == 200
