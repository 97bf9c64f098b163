"""One secret key for every web server of a deployment, and its rotation.

A session cookie is signed by the server that signed the user in and checked by
whichever server the balancer picks next; the session row is in the shared database.
Without one shared key the second server refuses the cookie, so a deployment that can
have several servers (PostgreSQL or Redis configured) must be given the key and refuses
to start without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ils.db.migrations import upgrade_database
from ils.errors import ConfigurationError
from ils.secret_key import MIN_SECRET_KEY_LENGTH, resolve_secret_keys
from ils.settings import Settings
from ils.web.app import create_app
from ils.web.security import SESSION_COOKIE
from tests.conftest import delete_prefix
from tests.web.conftest import BASE_URL, Factory, cheap_hasher, sign_in

ROOT = Path(__file__).resolve().parents[2]
KEY_A = "a" * 20 + "-first-key-of-this-test"
KEY_B = "b" * 20 + "-second-key-of-this-test"
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


def _settings(data_dir: Path, **extra: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, start_workers=False, **extra)


@pytest.mark.parametrize(
    "where",
    [{"database_url": "postgresql+asyncpg://db.internal/ils"}, {"redis_url": "redis://r:6379"}],
    ids=["postgres", "redis"],
)
def test_app_refuses_to_start_without_a_key_beyond_the_embedded_default(
    tmp_path: Path, where: dict[str, str]
) -> None:
    settings = _settings(tmp_path / "var", **where)
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "ILS_SECRET_KEY" in message and "ILS_SECRET_KEY_FILE" in message
    assert GENERATE in message
    assert not (tmp_path / "var" / "secret_key").exists()  # never generated there


def test_redis_given_as_host_or_sentinels_needs_a_key_too(tmp_path: Path) -> None:
    for where in ({"redis_host": "redis.internal"}, {"redis_sentinels": "s1:26379"}):
        with pytest.raises(ConfigurationError, match="ILS_SECRET_KEY"):
            resolve_secret_keys(_settings(tmp_path, **where))


def test_embedded_default_still_generates_its_own(tmp_path: Path) -> None:
    keys = resolve_secret_keys(_settings(tmp_path / "var"))
    assert len(keys.current) >= 64
    assert (tmp_path / "var" / "secret_key").read_text().strip() == keys.current


def test_key_from_a_file_and_the_checks_on_it(tmp_path: Path) -> None:
    where = {"redis_url": "redis://r:6379"}
    key_file = tmp_path / "ils-secret"
    key_file.write_text(KEY_A + "\n")
    from_file = resolve_secret_keys(_settings(tmp_path, secret_key_file=key_file, **where))
    assert from_file.current == KEY_A
    with pytest.raises(ConfigurationError, match="not both"):
        resolve_secret_keys(
            _settings(tmp_path, secret_key_file=key_file, secret_key=KEY_B, **where)
        )
    with pytest.raises(ConfigurationError, match="cannot read"):
        resolve_secret_keys(_settings(tmp_path, secret_key_file=tmp_path / "nope", **where))
    short = "x" * (MIN_SECRET_KEY_LENGTH - 1)
    with pytest.raises(ConfigurationError, match=f"at least {MIN_SECRET_KEY_LENGTH}") as caught:
        resolve_secret_keys(_settings(tmp_path, secret_key=short, **where))
    assert short not in str(caught.value)
    assert GENERATE in str(caught.value)
    assert KEY_A not in repr(from_file) + repr(_settings(tmp_path, secret_key=KEY_A))


def test_ils_serve_stops_at_once_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILS_", "REDIS_"))}
    env |= {"ILS_DATA_DIR": str(tmp_path / "var"), "ILS_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "ils", "serve", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ILS_SECRET_KEY" in done.stderr + done.stdout


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings, start_workers=False, password_hasher=cheap_hasher())
    async with app.router.lifespan_context(app):
        yield app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


async def _me(app: FastAPI, cookie: str) -> int:
    async with _client(app) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        return (await client.get("/api/auth/me")).status_code


async def _cookie_of_new_user(app: FastAPI) -> str:
    factory = Factory(app.state.ils)
    user = await factory.user(await factory.company())
    async with _client(app) as client:
        await sign_in(client, user.email)
        cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


@pytest.mark.redis
@pytest.mark.postgres
async def test_session_signed_by_one_server_is_accepted_by_another(
    tmp_path: Path, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    await upgrade_database(pg_url)
    fleet = {
        "database_url": pg_url,
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "secret_key": KEY_A,
    }
    try:
        async with (
            _running(_settings(tmp_path / "server1", **fleet)) as first,
            _running(_settings(tmp_path / "server2", **fleet)) as second,
        ):
            cookie = await _cookie_of_new_user(first)
            assert await _me(first, cookie) == 200
            assert await _me(second, cookie) == 200
    finally:
        await delete_prefix(redis_url, redis_prefix)


async def test_rotation_accepts_listed_previous_keys_only(tmp_path: Path) -> None:
    """Servers on one database (a SQLite file here) with old, rotated and other keys."""
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    await upgrade_database(database_url)

    def server(name: str, **keys: str) -> Settings:
        return _settings(tmp_path / name, database_url=database_url, **keys)

    async with (
        _running(server("old", secret_key=KEY_A)) as old,
        _running(server("rotated", secret_key=KEY_B, secret_key_previous=f" {KEY_A} ,")) as rotated,
        _running(server("new-only", secret_key=KEY_B)) as new_only,
    ):
        signed_with_a = await _cookie_of_new_user(old)
        assert await _me(rotated, signed_with_a) == 200  # A is listed as previous
        assert await _me(new_only, signed_with_a) == 401  # A is not listed: refused
        signed_with_b = await _cookie_of_new_user(rotated)  # new cookies use B
        assert await _me(new_only, signed_with_b) == 200
        assert await _me(old, signed_with_b) == 401
