"""The storage tests' fixtures: each backend as a process builds it, and a key prefix of
each test's own in the shared S3 bucket (``tests/s3.py`` runs the server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ils.settings import Settings
from ils.storage.backends import Storages, open_storages
from ils.storage_settings import StorageSettings
from tests.s3 import S3Server


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of the test's own in the shared bucket."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_settings(s3_server: S3Server, key_prefix: str) -> StorageSettings:
    """The s3 backend on the test server, under the test's key prefix."""
    return s3_server.storage_settings(key_prefix)


@pytest.fixture(params=["local", "s3"])
def storages(request: pytest.FixtureRequest, tmp_path: Path) -> Storages:
    """Both backends as a process builds them from settings (every contract test runs
    on each)."""
    if request.param == "local":
        return open_storages(Settings(_env_file=None, data_dir=tmp_path / "var"))
    storage: StorageSettings = request.getfixturevalue("s3_settings")
    return open_storages(Settings(_env_file=None, data_dir=tmp_path / "var", storage=storage))
