"""``ils check`` as a user runs it (``python -m ils check`` with environment variables)
against real servers, and ``ils serve`` / ``ils worker`` refusing to start on a fatal
problem. The pure pieces (version parsing, secret blanking, URL rules) are tested in
process at the end."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.exc import OperationalError

from ils.checks import CheckResult, Status, describe_error, exit_code, summary
from ils.checks.config import check_public_url, check_secret_key, load_settings_checked
from ils.checks.runner import scrub, secret_values
from ils.checks.services import (
    check_database,
    check_redis,
    check_storage,
    redis_eviction_result,
    redis_persistence_result,
    redis_version_result,
)
from ils.db.migrations import head_revision, upgrade_database
from ils.settings import Settings
from tests.conftest import _psql, free_port
from tests.faults.smtp import SmtpRecorder
from tests.s3 import S3Server
from tests.support.silent_server import SilentServer

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "a-test-secret-key-that-is-long-enough-0123456789"
#: Variables of the machine running the tests that would leak into the deployment.
_FOREIGN = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")
CHECK_NAMES = {
    "settings",
    "database",
    "redis",
    "storage",
    "smtp",
    "secret_key",
    "time_zones",
    "public_url",
}


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_") and k not in _FOREIGN}
    env["ILS_DATA_DIR"] = str(tmp_path / "var")
    env.update(values)
    return env


def ils(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m ils ARGS`` in ``tmp_path`` (no .env of the repository) with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "ils", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def check_json(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    result = ils(tmp_path, "check", "--json", *args, **env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def line_of(output: str, name: str) -> str:
    """The printed line of check ``name`` and its fix line, if any."""
    lines = output.splitlines()
    for n, line in enumerate(lines):
        if line[2:].startswith(f"{name} "):
            fix = lines[n + 1] if n + 1 < len(lines) and "fix:" in lines[n + 1] else ""
            return f"{line}\n{fix}"
    raise AssertionError(f"no line for {name} in:\n{output}")


def closed_port() -> int:
    """A port nobody listens on (refused at once)."""
    return free_port()


# -- the command -----------------------------------------------------------------------


def test_a_fresh_embedded_default_passes_and_creates_nothing_it_checks(tmp_path: Path) -> None:
    result = ils(tmp_path, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("all checks passed")
    for name in CHECK_NAMES:
        assert line_of(result.stdout, name).startswith("✓"), result.stdout
    assert "does not exist yet: the first start creates it" in result.stdout
    assert ".eml files" in result.stdout
    # No database file, no generated key: the first start makes them, not a check.
    var = tmp_path / "var"
    assert not (var / "ils.db").exists()
    assert not (var / "secret_key").exists()
    # The storage probe was deleted again.
    assert [p for p in var.rglob("*") if p.is_file()] == []


def test_json_gives_every_check_with_status_sentence_and_fix(tmp_path: Path) -> None:
    code, report = check_json(tmp_path)
    assert code == 0
    assert set(report) == {"ok", "problems", "warnings", "checks"}
    assert report["ok"] is True
    assert report["problems"] == 0
    assert {check["name"] for check in report["checks"]} == CHECK_NAMES
    for check in report["checks"]:
        assert set(check) == {"name", "status", "message", "fix", "fatal", "duration_ms"}
        assert check["status"] in ("ok", "warning", "problem")
        assert isinstance(check["message"], str) and check["message"]
        assert check["fatal"] is False
        assert 0 <= check["duration_ms"] < 60_000


def test_a_bad_value_names_the_variable_without_a_stack_trace(tmp_path: Path) -> None:
    result = ils(tmp_path, "check", ILS_PORT="eighty", ILS_SMTP__PASSWORD="hunter2-hunter2")
    assert result.returncode == 1
    assert "ILS_PORT: Input should be a valid integer" in result.stdout
    assert "eighty" not in result.stdout  # values are never echoed: one may be a password
    assert "Traceback" not in result.stdout + result.stderr
    # The other commands load settings the same way: a clean error, exit 2.
    worker = ils(tmp_path, "worker", ILS_PORT="eighty")
    assert worker.returncode == 2
    assert "ILS_PORT: Input should be a valid integer" in worker.stderr
    assert "Traceback" not in worker.stderr


def test_database_on_a_closed_port(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql+asyncpg://ils:pg-password-1234@127.0.0.1:{port}/ils"
    result = ils(tmp_path, "check", ILS_DATABASE_URL=url, ILS_SECRET_KEY=SECRET_KEY)
    assert result.returncode == 1
    line = line_of(result.stdout, "database")
    assert line.startswith("✗")
    assert f"postgresql+asyncpg://ils:***@127.0.0.1:{port}/ils does not answer" in line
    assert "Connect call failed" in line
    assert "fix: start the database or correct the host and port in ILS_DATABASE_URL" in line
    assert "pg-password-1234" not in result.stdout + result.stderr
    assert SECRET_KEY not in result.stdout


@pytest.fixture
def empty_pg_url(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database nobody migrated (``pg_url`` databases come migrated)."""
    name = f"ils_check_{uuid.uuid4().hex[:12]}"
    _psql(pg_admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        _psql(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_postgres_not_migrated_then_fixed_with_db_upgrade(
    tmp_path: Path, empty_pg_url: str
) -> None:
    pg_url = empty_pg_url
    env = {"ILS_DATABASE_URL": pg_url, "ILS_SECRET_KEY": SECRET_KEY}
    code, report = check_json(tmp_path, **env)
    assert code == 1
    database = by_name(report)["database"]
    assert database["status"] == "problem"
    assert database["fatal"] is True
    assert f"is at revision none, the code needs {head_revision()}" in database["message"]
    assert "ils db upgrade" in database["fix"]
    # The fix it names works.
    await upgrade_database(pg_url)
    code, report = check_json(tmp_path, **env)
    assert by_name(report)["database"]["status"] == "ok", report
    # A loopback public URL outside the embedded default is a warning: exit 0.
    assert by_name(report)["public_url"]["status"] == "warning"
    assert code == 0, report


async def test_no_secret_key_with_postgres(tmp_path: Path, pg_url: str) -> None:
    await upgrade_database(pg_url)
    result = ils(tmp_path, "check", ILS_DATABASE_URL=pg_url)
    assert result.returncode == 1
    line = line_of(result.stdout, "secret_key")
    assert line.startswith("✗")
    assert "must be set when PostgreSQL or Redis is configured" in line
    assert "fix: set ILS_SECRET_KEY (or ILS_SECRET_KEY_FILE)" in line
    assert line_of(result.stdout, "database").startswith("✓")
    # A key that is there but too short is refused by the same rules as the web app's.
    code, report = check_json(tmp_path, ILS_DATABASE_URL=pg_url, ILS_SECRET_KEY="changeme")
    assert code == 1
    assert "at least 32" in by_name(report)["secret_key"]["message"]


def test_redis_on_a_closed_port(tmp_path: Path) -> None:
    port = closed_port()
    result = ils(
        tmp_path,
        "check",
        ILS_REDIS_URL=f"redis://:redis-pw-5678@127.0.0.1:{port}/0",
        ILS_SECRET_KEY=SECRET_KEY,
    )
    assert result.returncode == 1
    line = line_of(result.stdout, "redis")
    assert line.startswith("✗")
    assert f"Redis at redis://:***@127.0.0.1:{port}/0 does not answer" in line
    assert "jobs go to the local store until it does" in line
    assert "fix: start Redis or correct ILS_REDIS_URL" in line
    assert "redis-pw-5678" not in result.stdout + result.stderr


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[str]:
    """A private Redis that evicts (allkeys-lru) and keeps no append-only file: the two
    things the check complains about. The machine's shared Redis is left alone."""
    port = free_port()
    directory = tmp_path / "redis"
    directory.mkdir()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--maxmemory-policy",
            "allkeys-lru",
            "--appendonly",
            "no",
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _pong(port):
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(20)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_redis_with_an_evicting_policy(tmp_path: Path, evicting_redis: str) -> None:
    env = {"ILS_REDIS_URL": evicting_redis, "ILS_SECRET_KEY": SECRET_KEY}
    result = ils(tmp_path, "check", **env)
    assert result.returncode == 1
    redis = line_of(result.stdout, "redis")
    assert redis.startswith("✓")
    assert "(BullMQ needs 5.0 or newer)" in redis
    eviction = line_of(result.stdout, "redis_eviction")
    assert eviction.startswith("✗")
    assert "maxmemory-policy is 'allkeys-lru', not 'noeviction'" in eviction
    assert "fix: run `CONFIG SET maxmemory-policy noeviction`" in eviction
    assert "redis.conf" in eviction
    persistence = line_of(result.stdout, "redis_persistence")
    assert persistence.startswith("!")
    assert "appendonly is off" in persistence
    # Only a problem for `ils check` until noeviction is required; then it stops starts.
    assert by_name(check_json(tmp_path, **env)[1])["redis_eviction"]["fatal"] is False
    code, report = check_json(tmp_path, ILS_REDIS_REQUIRE_NOEVICTION="true", **env)
    assert code == 1
    assert by_name(report)["redis_eviction"]["fatal"] is True


def test_smtp_on_a_closed_port(tmp_path: Path) -> None:
    port = closed_port()
    result = ils(
        tmp_path,
        "check",
        ILS_SMTP__HOST="127.0.0.1",
        ILS_SMTP__PORT=str(port),
        ILS_SMTP__PASSWORD="smtp-pw-9012",
        ILS_SMTP__USERNAME="lab",
    )
    assert result.returncode == 1
    line = line_of(result.stdout, "smtp")
    assert line.startswith("✗")
    assert f"the SMTP server at 127.0.0.1:{port} (starttls) fails" in line
    assert "fix: start the mail server or correct ILS_SMTP__HOST" in line
    assert "smtp-pw-9012" not in result.stdout + result.stderr


def test_a_live_smtp_server_greets_and_gets_no_mail(tmp_path: Path) -> None:
    with SmtpRecorder() as smtp:
        result = ils(
            tmp_path,
            "check",
            ILS_SMTP__HOST=smtp.host,
            ILS_SMTP__PORT=str(smtp.port),
            ILS_SMTP__SECURITY="none",
        )
        assert smtp.count() == 0
        assert smtp.data_commands == 0
    line = line_of(result.stdout, "smtp")
    assert line.startswith("✓"), result.stdout
    assert "greets (220) and answers EHLO" in line


def test_storage_under_a_regular_file_is_not_writable(tmp_path: Path) -> None:
    # Tests run as root, which chmod cannot stop: a path under a regular file cannot
    # be a directory for anyone.
    data_dir = tmp_path / "not-a-directory"
    data_dir.write_text("a file\n")
    result = ils(tmp_path, "check", ILS_DATA_DIR=str(data_dir))
    assert result.returncode == 1
    storage = line_of(result.stdout, "storage")
    assert storage.startswith("✗")
    assert "documents: cannot write a probe object" in storage
    assert "uploads: cannot write a probe object" in storage
    assert "Not a directory" in storage
    assert "fix: make the directories writable" in storage
    database = line_of(result.stdout, "database")
    assert f"cannot be created: {data_dir} is not a directory" in database
    assert data_dir.read_text() == "a file\n"


def test_silent_servers_cost_the_timeout_not_a_hang(tmp_path: Path) -> None:
    server = SilentServer()
    try:
        started = time.monotonic()
        code, report = check_json(
            tmp_path,
            "--timeout",
            "1",
            ILS_DATABASE_URL=f"postgresql+asyncpg://ils@127.0.0.1:{server.port}/ils",
            ILS_REDIS_URL=f"redis://127.0.0.1:{server.port}/0",
            ILS_SMTP__HOST="127.0.0.1",
            ILS_SMTP__PORT=str(server.port),
            ILS_SECRET_KEY=SECRET_KEY,
        )
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert code == 1
    checks = by_name(report)
    assert "gives no answer within 1 s" in checks["database"]["message"]
    assert checks["database"]["fatal"] is True
    assert "Timeout" in checks["redis"]["message"]
    assert "Timed out" in checks["smtp"]["message"]
    # Concurrent, each bounded: about one timeout, not three (imports take the rest).
    assert all(check["duration_ms"] < 2_000 for check in report["checks"]), report
    assert elapsed < 120


# -- start-up --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["worker"], ["serve", "--no-workers"]])
def test_start_is_refused_on_a_closed_database_port(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    args = [*command, "--port", str(free_port())] if command[0] == "serve" else command
    started = time.monotonic()
    result = ils(
        tmp_path,
        *args,
        ILS_DATABASE_URL=f"postgresql+asyncpg://ils@127.0.0.1:{port}/ils",
        ILS_SECRET_KEY=SECRET_KEY,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "cannot start: " in result.stderr
    assert f"127.0.0.1:{port}/ils does not answer" in result.stderr
    assert "fix: start the database or correct the host and port" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 120  # a refusal, not a retry loop (most of it is importing)


def test_serve_without_a_secret_key_with_postgres_is_refused(tmp_path: Path, pg_url: str) -> None:
    asyncio.run(upgrade_database(pg_url))
    result = ils(tmp_path, "serve", "--port", str(free_port()), ILS_DATABASE_URL=pg_url)
    assert result.returncode == 2, result.stderr
    assert "cannot start: ILS_SECRET_KEY (or ILS_SECRET_KEY_FILE) must be set" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_starts_despite_a_warning_and_logs_it_once(tmp_path: Path) -> None:
    port = closed_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ils", "worker", "--queues", "email"],
        cwd=tmp_path,
        # Wide lines: the log keeps each warning on one line.
        env=_env(tmp_path, ILS_SMTP__HOST="127.0.0.1", ILS_SMTP__PORT=str(port), COLUMNS="400"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"ILS \S+ workers: ", line):
                break
        else:
            pytest.fail("the worker exited:\n" + "".join(lines))
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert output.count(f"smtp: the SMTP server at 127.0.0.1:{port}") == 1, output
    assert "Traceback" not in output


# -- the pieces, in process ------------------------------------------------------------


async def test_a_database_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    db.close()
    url = f"sqlite:///{path}"
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=url)
    [result] = await check_database(settings, 5)
    assert "revision 9999_from_the_future, which this code does not know" in result.message
    assert result.fatal


async def test_a_database_that_is_not_there_refuses(tmp_path: Path, pg_admin_url: str) -> None:
    url = f"{pg_admin_url.rsplit('/', 1)[0]}/ils_check_no_such_database"
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=url)
    [result] = await check_database(settings, 5)
    assert "ils_check_no_such_database refuses us: InvalidCatalogNameError" in result.message
    assert "the user, password or database name" in (result.fix or "")
    assert result.fatal


async def test_storage_in_an_s3_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    prefix = f"check-{uuid.uuid4().hex[:8]}"
    good = Settings(_env_file=None, data_dir=tmp_path, storage=s3_server.storage_settings(prefix))
    [result] = await check_storage(good, 5)
    assert result.status is Status.OK, result
    assert f"S3 bucket {s3_server.bucket}" in result.message
    assert "<Key>" not in s3_server.listing(prefix)  # the probes were deleted
    missing = Settings(
        _env_file=None,
        data_dir=tmp_path,
        storage=s3_server.storage_settings(prefix, bucket="ils-no-such-bucket"),
    )
    [result] = await check_storage(missing, 5)
    assert result.status is Status.PROBLEM
    assert "documents: cannot write a probe object" in result.message
    assert "ILS_STORAGE__BUCKET" in (result.fix or "")
    assert "test-secret-access-key" not in result.message


async def test_redis_by_host_and_port_and_a_tls_mistake(tmp_path: Path, redis_url: str) -> None:
    parsed = urlsplit(redis_url)
    by_host = Settings(
        _env_file=None, data_dir=tmp_path, redis_host=parsed.hostname, redis_port=parsed.port
    )
    results = {result.name: result for result in await check_redis(by_host, 5)}
    assert results["redis"].status is Status.OK, results
    assert f"{parsed.hostname}:{parsed.port}" in results["redis"].message
    assert set(results) == {"redis", "redis_eviction", "redis_persistence"}
    mistake = Settings(
        _env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_tls_ca_file=tmp_path
    )
    [result] = await check_redis(mistake, 5)
    assert result.status is Status.PROBLEM and result.fatal
    assert "ILS_REDIS_TLS_CA_FILE set but TLS is off" in result.message


def test_redis_versions_and_policies() -> None:
    assert redis_version_result({"redis_version": "4.0.9"}, "x").status is Status.PROBLEM
    assert redis_version_result({"redis_version": "5.0.0"}, "x").status is Status.OK
    assert redis_version_result({"redis_version": "7.2.4-valkey"}, "x").status is Status.OK
    assert redis_eviction_result("noeviction", required=True).status is Status.OK
    unknown = redis_eviction_result(None, required=True)
    assert unknown.status is Status.WARNING and not unknown.fatal
    assert redis_eviction_result("volatile-lru", required=False).fatal is False
    assert redis_persistence_result({"aof_enabled": 1}).status is Status.OK
    assert redis_persistence_result({"aof_enabled": 0}).status is Status.WARNING


def test_secrets_are_blanked_out_of_every_sentence(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
        database_url="postgresql+asyncpg://u:db-pass-123@db/ils",
        smtp={"host": "mail", "password": "smtp-pass-456"},
    )
    leaky = CheckResult(
        "x", Status.PROBLEM, f"saw {SECRET_KEY} and db-pass-123", "not smtp-pass-456"
    )
    clean = scrub(leaky, secret_values(settings))
    assert clean.message == "saw *** and ***"
    assert clean.fix == "not ***"


def test_a_wrapped_driver_error_is_one_line() -> None:
    inner = ConnectionRefusedError(111, "Connect call failed")
    wrapped = OperationalError("SELECT 1", {}, inner)
    assert describe_error(wrapped) == "ConnectionRefusedError: [Errno 111] Connect call failed"
    assert describe_error(TimeoutError()) == "TimeoutError"


async def test_public_url_rules(tmp_path: Path) -> None:
    def settings(url: str, **more: Any) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path, public_url=url, **more)

    assert (await check_public_url(settings("https://lab.example"), 1))[0].status is Status.OK
    assert (await check_public_url(settings("https://lab.example/?a=1"), 1))[
        0
    ].status is Status.PROBLEM
    assert (await check_public_url(settings("http://u:p@lab.example"), 1))[
        0
    ].status is Status.PROBLEM
    loopback = settings("http://127.0.0.1:8000", smtp={"host": "mail"})
    assert (await check_public_url(loopback, 1))[0].status is Status.WARNING


async def test_embedded_secret_key_file_that_is_empty(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    result = (await check_secret_key(Settings(_env_file=None, data_dir=tmp_path), 1))[0]
    assert result.status is Status.PROBLEM and result.fatal


def test_settings_errors_name_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ILS_QUEUES__EMAIL__CONCURRENCY", "0")
    settings, result = load_settings_checked()
    assert settings is None
    assert "ILS_QUEUES__EMAIL__CONCURRENCY: Input should be greater than or equal to 1" in (
        result.message
    )
    assert result.fatal


def test_exit_code_and_summary() -> None:
    good = CheckResult("a", Status.OK, "fine")
    warn = CheckResult("b", Status.WARNING, "hm", "do x")
    bad = CheckResult("c", Status.PROBLEM, "no", "do y")
    assert exit_code([good, warn]) == 0
    assert exit_code([good, bad]) == 1
    assert summary([good]) == "all checks passed"
    assert summary([warn, bad, bad]) == "2 problems, 1 warning"
