"""The S3 backend against a real S3-compatible server: the bucket's layout and
metadata, objects changed behind the client's back, and a server that is down.

Objects are tampered with through a plain obstore client of the same bucket: signed
requests that go around :class:`S3FileStorage` and its checksums, as another program
(or a person with the bucket's keys) would.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from obstore.store import S3Store

from ils.errors import StorageChecksumError, StorageError
from ils.settings import Settings
from ils.storage.backends import open_storages
from ils.storage.s3 import SHA256_ATTRIBUTE, S3FileStorage, open_bucket
from ils.storage_settings import StorageSettings
from tests.conftest import free_port
from tests.s3 import S3Server
from tests.storage.test_contract import CONTENT, DOCUMENT_KEY, UPLOAD_KEY


@pytest.fixture
def s3(s3_settings: StorageSettings) -> S3FileStorage:
    """The documents area of the test's prefix."""
    return S3FileStorage(open_bucket(s3_settings), "documents", key_prefix=s3_settings.key_prefix)


@pytest.fixture
def raw(s3_settings: StorageSettings) -> S3Store:
    """A client of the same bucket without our checks."""
    return open_bucket(s3_settings)


async def test_keys_keep_the_company_layout_under_prefix_and_area(
    s3_server: S3Server, s3_settings: StorageSettings, key_prefix: str, tmp_path: Path
) -> None:
    storages = open_storages(Settings(_env_file=None, data_dir=tmp_path, storage=s3_settings))
    stored = await storages.documents.put(DOCUMENT_KEY, CONTENT)
    await storages.uploads.put(UPLOAD_KEY, b"TRCFMT=1;400;E;R;F\r\n")
    keys = s3_server.listing(key_prefix)
    assert f"<Key>{key_prefix}/documents/{DOCUMENT_KEY}</Key>" in keys
    assert f"<Key>{key_prefix}/uploads/{UPLOAD_KEY}</Key>" in keys
    got = await open_bucket(s3_settings).get_async(f"{key_prefix}/documents/{DOCUMENT_KEY}")
    assert got.attributes[SHA256_ATTRIBUTE] == stored.sha256
    assert got.attributes["Content-Type"] == "application/pdf"
    assert key_prefix in storages.where and "secret" not in storages.where
    assert os.listdir(tmp_path) == []  # nothing on this machine's disk


async def test_a_damaged_object_is_refused_without_content_or_traceback(
    s3: S3FileStorage, raw: S3Store
) -> None:
    stored = await s3.put(DOCUMENT_KEY, CONTENT)
    # Bit rot on the server: other bytes, the metadata left as it was.
    damaged = CONTENT.replace(b"Zebedee", b"Zebedeo")
    await raw.put_async(
        s3.object_name(DOCUMENT_KEY), damaged, attributes={SHA256_ATTRIBUTE: stored.sha256}
    )
    for recorded in (None, stored.sha256):
        with pytest.raises(StorageChecksumError) as caught:
            await s3.get(DOCUMENT_KEY, sha256=recorded)
        message = str(caught.value)
        assert "Zebedee" not in message and "Zebedeo" not in message
        assert "\n" not in message and "Traceback" not in message
        assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_an_object_replaced_whole_is_caught_by_the_recorded_checksum(
    s3: S3FileStorage, raw: S3Store
) -> None:
    stored = await s3.put(DOCUMENT_KEY, CONTENT)
    other = b"%PDF-1.4 another document\n%%EOF\n"
    await raw.put_async(
        s3.object_name(DOCUMENT_KEY),
        other,
        attributes={SHA256_ATTRIBUTE: hashlib.sha256(other).hexdigest()},
    )
    # Consistent in itself, so only the database row's checksum can tell.
    assert await s3.get(DOCUMENT_KEY) == other
    with pytest.raises(StorageChecksumError):
        await s3.get(DOCUMENT_KEY, sha256=stored.sha256)


async def test_an_object_without_checksum_needs_the_recorded_one(
    s3: S3FileStorage, raw: S3Store
) -> None:
    await raw.put_async(s3.object_name(DOCUMENT_KEY), CONTENT)
    with pytest.raises(StorageChecksumError, match="no recorded SHA-256"):
        await s3.get(DOCUMENT_KEY)
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert await s3.get(DOCUMENT_KEY, sha256=digest) == CONTENT


async def test_an_unreachable_server_is_a_short_storage_error(s3_server: S3Server) -> None:
    settings = s3_server.storage_settings(
        "down", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_s=5.0
    )
    storage = S3FileStorage(open_bucket(settings), "documents")
    for call in (storage.put(DOCUMENT_KEY, CONTENT), storage.get(DOCUMENT_KEY)):
        with pytest.raises(StorageError) as caught:
            await call
        assert not isinstance(caught.value, StorageChecksumError)
        message = str(caught.value)
        assert DOCUMENT_KEY in message and "\n" not in message and len(message) < 500
        assert "test-secret-access-key" not in message


async def test_a_missing_bucket_is_a_storage_error(s3_server: S3Server) -> None:
    settings = s3_server.storage_settings("nobucket", bucket="no-such-bucket")
    storage = S3FileStorage(open_bucket(settings), "documents")
    with pytest.raises(StorageError, match="cannot store file"):
        await storage.put(DOCUMENT_KEY, CONTENT)
