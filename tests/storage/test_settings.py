"""Choosing the backend: the embedded default stays the local directories, the s3
settings come from ``ILS_STORAGE__...`` and are checked at start-up, the secret never
shows, and the endpoint follows the addressing style."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ils.errors import ConfigurationError
from ils.settings import Settings
from ils.storage import LocalFileStorage
from ils.storage.backends import open_storages
from ils.storage.s3 import S3FileStorage, bucket_endpoint, open_bucket
from ils.storage_settings import StorageSettings


def test_the_default_is_the_local_directories_as_before(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.storage.backend == "local"
    storages = open_storages(settings)
    assert isinstance(storages.documents, LocalFileStorage)
    assert isinstance(storages.uploads, LocalFileStorage)
    assert storages.documents.root == tmp_path / "documents" == settings.documents_dir
    assert storages.uploads.root == tmp_path / "uploads" == settings.uploads_dir


def test_s3_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ILS_STORAGE__BACKEND": "s3",
        "ILS_STORAGE__BUCKET": "lab-files",
        "ILS_STORAGE__ENDPOINT_URL": "https://minio.internal:9000/",
        "ILS_STORAGE__REGION": "eu-west-2",
        "ILS_STORAGE__ACCESS_KEY_ID": "AKIAEXAMPLE",
        "ILS_STORAGE__SECRET_ACCESS_KEY": "wJalrXUtnFEMI-very-secret",
        "ILS_STORAGE__KEY_PREFIX": "/ils/prod/",
        "ILS_STORAGE__PATH_STYLE": "true",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    storage = settings.storage
    assert storage.backend == "s3" and storage.bucket == "lab-files"
    assert storage.endpoint_url == "https://minio.internal:9000"
    assert storage.region == "eu-west-2" and storage.path_style
    assert storage.key_prefix == "ils/prod"
    assert storage.secret_access_key is not None
    assert storage.secret_access_key.get_secret_value() == "wJalrXUtnFEMI-very-secret"
    assert "very-secret" not in repr(settings) and "very-secret" not in str(storage)
    storages = open_storages(settings)
    assert isinstance(storages.documents, S3FileStorage)
    assert storages.documents.object_name("c/d.pdf") == "ils/prod/documents/c/d.pdf"
    assert "very-secret" not in storages.where


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"backend": "s3"}, "needs a bucket"),
        ({"backend": "s3", "bucket": "  "}, "needs a bucket"),
        ({"access_key_id": "AKIA"}, "both access_key_id and secret_access_key"),
        ({"secret_access_key": "x"}, "both access_key_id and secret_access_key"),
        ({"endpoint_url": "minio:9000"}, "http:// or https://"),
        ({"key_prefix": "ils/../etc"}, "slash-separated names"),
        ({"backend": "gcs"}, "backend"),
    ],
)
def test_settings_that_cannot_work_are_refused(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        StorageSettings(**values)


@pytest.mark.parametrize(
    ("endpoint", "path_style", "expected"),
    [
        ("http://127.0.0.1:9000", True, "http://127.0.0.1:9000"),
        ("https://s3.example.com", False, "https://files.s3.example.com"),
        ("http://minio.lan:9000", False, "http://files.minio.lan:9000"),
        (None, False, None),
        (None, True, None),
    ],
)
def test_the_endpoint_follows_the_addressing_style(
    endpoint: str | None, path_style: bool, expected: str | None
) -> None:
    settings = StorageSettings(
        backend="s3", bucket="files", endpoint_url=endpoint, path_style=path_style
    )
    assert bucket_endpoint(settings) == expected


def test_a_bucket_is_needed_to_open_one() -> None:
    with pytest.raises(ConfigurationError, match="ILS_STORAGE__BUCKET"):
        open_bucket(StorageSettings())
