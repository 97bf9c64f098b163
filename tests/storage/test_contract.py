"""What every storage backend promises, run on the local directories and on a real
S3-compatible server: bytes come back as stored, missing keys are
``FileNotFoundError``, recorded checksums are enforced, unsafe keys are refused, and
a few MiB make the round trip intact."""

from __future__ import annotations

import hashlib
import os

import pytest

from ils.errors import StorageChecksumError
from ils.storage.backends import Storages

COMPANY = "0190a1b2c3d4e5f60718293a4b5c6d7e"
SUBJECT = "0190a1b2c3d4e5f60718293a4b5c6d7f"
DOCUMENT = "0190a1b2c3d4e5f60718293a4b5c6d80"
#: The layouts the callers use: the PDF worker's and the tracing upload's.
DOCUMENT_KEY = f"{COMPANY}/invoice/{SUBJECT}/{DOCUMENT}.pdf"
UPLOAD_KEY = f"{COMPANY}/{DOCUMENT}.oma"
CONTENT = b"%PDF-1.4 patient Zebedee Quillfeather\n%%EOF\n"


async def test_round_trip_in_both_areas(storages: Storages) -> None:
    stored = await storages.documents.put(DOCUMENT_KEY, CONTENT)
    assert stored.key == DOCUMENT_KEY
    assert stored.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert stored.size_bytes == len(CONTENT)
    upload = await storages.uploads.put(UPLOAD_KEY, b"TRCFMT=1;400;E;R;F\r\n")
    assert await storages.documents.get(DOCUMENT_KEY) == CONTENT
    assert await storages.documents.get(DOCUMENT_KEY, sha256=stored.sha256) == CONTENT
    assert await storages.uploads.get(UPLOAD_KEY, sha256=upload.sha256) == b"TRCFMT=1;400;E;R;F\r\n"
    # The areas are separate: the same key in the other one is not there.
    with pytest.raises(FileNotFoundError):
        await storages.uploads.get(DOCUMENT_KEY)


async def test_put_replaces(storages: Storages) -> None:
    await storages.documents.put(DOCUMENT_KEY, b"first")
    second = await storages.documents.put(DOCUMENT_KEY, b"second")
    assert await storages.documents.get(DOCUMENT_KEY, sha256=second.sha256) == b"second"


async def test_a_missing_key_is_file_not_found(storages: Storages) -> None:
    with pytest.raises(FileNotFoundError):
        await storages.documents.get(f"{COMPANY}/invoice/{SUBJECT}/missing.pdf")


async def test_delete_removes_and_is_idempotent(storages: Storages) -> None:
    await storages.documents.put(DOCUMENT_KEY, CONTENT)
    await storages.documents.delete(DOCUMENT_KEY)
    with pytest.raises(FileNotFoundError):
        await storages.documents.get(DOCUMENT_KEY)
    await storages.documents.delete(DOCUMENT_KEY)


async def test_a_wrong_recorded_checksum_is_refused(storages: Storages) -> None:
    await storages.documents.put(DOCUMENT_KEY, CONTENT)
    with pytest.raises(StorageChecksumError) as caught:
        await storages.documents.get(DOCUMENT_KEY, sha256="0" * 64)
    message = str(caught.value)
    assert DOCUMENT_KEY in message and "SHA-256" in message
    assert "Zebedee" not in message and "\n" not in message


@pytest.mark.parametrize("key", ["../x.pdf", "/abs.pdf", "a//b.pdf", ".hidden", "a/../b", ""])
async def test_unsafe_keys_are_refused(storages: Storages, key: str) -> None:
    with pytest.raises(ValueError, match="bad storage key"):
        await storages.documents.put(key, CONTENT)
    with pytest.raises(ValueError, match="bad storage key"):
        await storages.documents.get(key)


async def test_a_few_mib_round_trip(storages: Storages) -> None:
    data = os.urandom(6 * 1024 * 1024 + 123)
    stored = await storages.documents.put(DOCUMENT_KEY, data)
    assert stored.size_bytes == len(data)
    assert await storages.documents.get(DOCUMENT_KEY, sha256=stored.sha256) == data
