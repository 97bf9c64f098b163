"""A real S3-compatible server for the tests: moto's, in its own process, one per run.

Registered as a plugin by the root ``conftest.py``, so the storage, fleet and ``ils
check`` tests share one server. ``s3_server`` (session-scoped) starts ``python -m
moto.server`` on 127.0.0.1 and a free port, waits until it answers, creates one bucket
and always stops the process at the end. It never skips: a server that does not start
fails the tests with its log, since a CI run that quietly left S3 untested would prove
nothing. Each test takes a key prefix of its own, so tests share the bucket without
meeting.

The bucket is created, and its keys listed, with plain unsigned HTTP requests, which
moto accepts for those.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ils.storage_settings import StorageSettings
from tests.conftest import free_port

BUCKET = "ils-test"
START_TIMEOUT_S = 30.0
STARTS = 3


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and its bucket."""

    endpoint: str
    bucket: str
    log: Path

    def listing(self, prefix: str) -> str:
        """The bucket's ListObjectsV2 answer (XML) for keys under ``prefix``."""
        response = httpx.get(
            f"{self.endpoint}/{self.bucket}", params={"list-type": "2", "prefix": prefix}
        )
        assert response.status_code == 200, response.text[:500]
        return response.text

    def storage_settings(self, key_prefix: str, **overrides: Any) -> StorageSettings:
        """Settings of the s3 backend on this server under ``key_prefix``."""
        values: dict[str, Any] = {
            "backend": "s3",
            "bucket": self.bucket,
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "access_key_id": "test-key-id",
            "secret_access_key": "test-secret-access-key",
            "key_prefix": key_prefix,
            "path_style": True,
            "timeout_s": 10.0,
            **overrides,
        }
        return StorageSettings(**values)

    def env(self, key_prefix: str) -> dict[str, str]:
        """The same settings as environment variables (for an ``ils`` process)."""
        return {
            "ILS_STORAGE__BACKEND": "s3",
            "ILS_STORAGE__BUCKET": self.bucket,
            "ILS_STORAGE__ENDPOINT_URL": self.endpoint,
            "ILS_STORAGE__REGION": "us-east-1",
            "ILS_STORAGE__ACCESS_KEY_ID": "test-key-id",
            "ILS_STORAGE__SECRET_ACCESS_KEY": "test-secret-access-key",
            "ILS_STORAGE__KEY_PREFIX": key_prefix,
            "ILS_STORAGE__PATH_STYLE": "true",
            "ILS_STORAGE__TIMEOUT_S": "10",
        }


def log_tail(log: Path) -> str:
    """The end of a server's or worker's log, for a failure message."""
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def _answering(endpoint: str) -> bool:
    try:
        return httpx.get(endpoint + "/", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _start(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's server and wait until it answers; tries a new port when the first
    one was taken in the meantime."""
    for _ in range(STARTS):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if _answering(endpoint):
                return process, endpoint
            time.sleep(0.05)
        _stop(process)
    pytest.fail(
        f"the S3 test server (python -m moto.server) did not start; its log:\n{log_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server with one empty bucket, for the whole session (fails, never
    skips, when it cannot run)."""
    missing = [
        name for name in ("moto", "flask", "flask_cors") if importlib.util.find_spec(name) is None
    ]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: the storage tests need moto's S3 server "
            "(pip install -c requirements.lock -e '.[dev]')"
        )
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    process, endpoint = _start(log)
    try:
        created = httpx.put(f"{endpoint}/{BUCKET}", timeout=10.0)
        assert created.status_code == 200, f"cannot create the bucket: {created.text[:500]}"
        yield S3Server(endpoint, BUCKET, log)
    finally:
        _stop(process)
