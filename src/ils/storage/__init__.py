"""Where files live (generated documents, uploaded tracing files): an interface, and
the local-directory implementation.

Workers and routes only use :class:`FileStorage`; which implementation a process gets
(this one, or the S3 bucket of ``ils.storage.s3`` that every machine of a fleet reads)
is chosen from settings by ``ils.storage.backends``. Keys are relative,
slash-separated and made of safe characters (the worker builds them from ids); a key
that could climb out of the root is refused.

Local writes are atomic: the bytes go to a temporary file in the same directory,
are flushed to disk, and are renamed over the final name, so a reader (or a crash)
never sees half a file under a real key. Files are created 0600 and directories 0700
(:mod:`ils.files`): documents and uploads are patients' data.

Reads are checked: a caller that recorded the SHA-256 of what it stored (the
``documents`` and ``uploaded_files`` rows do) passes it to :meth:`FileStorage.get`, and
bytes that do not match raise :class:`StorageChecksumError` instead of being used.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ils.errors import StorageChecksumError, StorageError
from ils.files import open_private, private_dir

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What storage holds under a key: its checksum and size."""

    key: str
    sha256: str
    size_bytes: int


class FileStorage(Protocol):
    """Files by key. Implementations raise :class:`StorageError`."""

    async def put(self, key: str, data: bytes) -> StoredObject:
        """Store ``data`` under ``key`` atomically (all or nothing); replaces any."""
        ...

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        """The bytes under ``key``; ``FileNotFoundError`` when there are none.

        Raises:
            StorageChecksumError: they do not hash to ``sha256`` (when given) or to
                the checksum the backend stored with them (when it keeps one).
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it is not there."""
        ...


def verify_checksum(key: str, data: bytes, *expected: str | None) -> None:
    """Refuse ``data`` unless it hashes to every checksum of ``expected`` given.

    The message names the key only: never the content, which may be clinical.

    Raises:
        StorageChecksumError: a checksum does not match.
    """
    wanted = {value.lower() for value in expected if value is not None}
    if wanted and wanted != {hashlib.sha256(data).hexdigest()}:
        raise StorageChecksumError(
            f"stored file {key} does not match its recorded SHA-256: it was changed or "
            "damaged after it was written"
        )


def check_key(key: str) -> list[str]:
    """The parts of ``key`` after checking each is a safe name (no ``..``, no ``/`` at
    either end, no hidden files).

    Raises:
        ValueError: the key is not one this storage makes.
    """
    parts = key.split("/")
    if not parts or any(not _KEY_PART.match(part) for part in parts):
        raise ValueError(f"bad storage key {key!r}")
    return parts


class LocalFileStorage:
    """Files under one directory (``var/documents`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The file of ``key`` under the root."""
        return self.root.joinpath(*check_key(key))

    async def put(self, key: str, data: bytes) -> StoredObject:
        target = self.path(key)
        try:
            await asyncio.to_thread(_write_atomically, target, data)
        except OSError as exc:
            raise StorageError(f"cannot store document {key}: {exc.strerror}") from exc
        return StoredObject(key, hashlib.sha256(data).hexdigest(), len(data))

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        path = self.path(key)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read document {key}: {exc.strerror}") from exc
        # The file is in memory already: hashing it costs about 1 ms per MiB, no extra I/O.
        verify_checksum(key, data, sha256)
        return data

    async def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise StorageError(f"cannot delete document {key}: {exc.strerror}") from exc


def _write_atomically(target: Path, data: bytes) -> None:
    # Documents hold patient data: 0600 files in 0700 directories, whatever the umask
    # (the rename keeps the temporary file's mode).
    private_dir(target.parent)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(open_private(temp), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    # The rename itself must survive a power cut: sync the directory entry too.
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
