"""What ILS writes to disk is the service user's only: files 0600, directories 0700,
whatever the umask the process was started with (022 is the usual one, which would
publish every file to all local users).

Each writer is exercised as a process uses it: the app database through
``create_engine`` (and SQLite's own companion files), documents and uploads through
the storages a process opens from settings, stored e-mail through the file transport,
the secret key through its resolution.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from ils.db.engine import create_engine
from ils.secret_key import SECRET_KEY_FILE, resolve_secret_keys
from ils.settings import Settings, default_database_url
from ils.storage.backends import open_storages
from ils.workers.email.transport import FileTransport, Outgoing


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask for the test (restored after it)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "srv" / "var", redis_url=None)


async def test_the_sqlite_database_and_its_companion_files(umask: int, settings: Settings) -> None:
    engine = create_engine(default_database_url(settings.data_dir))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE patients (name TEXT)"))
            await conn.execute(text("INSERT INTO patients VALUES ('Jane')"))
        database = settings.data_dir / "ils.db"
        # Open: the write-ahead log and its index exist while a connection is.
        # The writers' gate exists once a background writer has checked it (the write
        # above is one).
        for name in ("ils.db", "ils.db-wal", "ils.db-shm", "ils.db-writers"):
            assert mode(database.with_name(name)) == 0o600, name
        assert mode(settings.data_dir) == 0o700
        assert mode(settings.data_dir.parent) == 0o700
    finally:
        await engine.dispose()
    # A rollback journal (kept by PERSIST) gets the database file's mode too.
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=PERSIST")
        conn.execute("INSERT INTO patients VALUES ('John')")
    conn.close()
    assert mode(database.with_name("ils.db-journal")) == 0o600


async def test_documents_and_uploads(umask: int, settings: Settings) -> None:
    storages = open_storages(settings)
    await storages.documents.put("examinations/o-1/form.pdf", b"%PDF-1.7 eye exam")
    await storages.uploads.put("tracings/t-1.oma", b"REQ=FIL")
    docs, uploads = settings.documents_dir, settings.uploads_dir
    assert mode(docs / "examinations" / "o-1" / "form.pdf") == 0o600
    assert mode(uploads / "tracings" / "t-1.oma") == 0o600
    for directory in (docs, docs / "examinations", docs / "examinations" / "o-1", uploads):
        assert mode(directory) == 0o700, directory
    assert mode(settings.data_dir) == 0o700
    # Replacing a file keeps it private (the new bytes come through a new file).
    await storages.documents.put("examinations/o-1/form.pdf", b"%PDF-1.7 corrected")
    assert mode(docs / "examinations" / "o-1" / "form.pdf") == 0o600


async def test_stored_mail(umask: int, settings: Settings) -> None:
    message = EmailMessage()
    message["Subject"] = "Your order"
    message.set_content("Lenses for Jane")
    mail = Outgoing(
        message,
        message.as_bytes(),
        "lab@example.com",
        "jane@example.com",
        "<m-1@example.com>",
        "m-1",
    )

    async def nothing() -> None:
        return None

    await FileTransport(settings.mail_dir).send(mail, nothing)
    assert mode(settings.mail_dir / "m-1.eml") == 0o600
    assert mode(settings.mail_dir) == 0o700
    assert mode(settings.data_dir) == 0o700


def test_the_generated_secret_key(umask: int, settings: Settings) -> None:
    resolve_secret_keys(settings)
    assert mode(settings.data_dir / SECRET_KEY_FILE) == 0o600
    assert mode(settings.data_dir) == 0o700


def test_an_existing_directory_keeps_its_mode(umask: int, settings: Settings) -> None:
    """A data directory an operator made (shared with a backup user, say) is theirs."""
    settings.data_dir.mkdir(parents=True)
    os.chmod(settings.data_dir, 0o750)  # noqa: S103 (the operator's choice, kept)
    resolve_secret_keys(settings)
    assert mode(settings.data_dir) == 0o750
    assert mode(settings.data_dir / SECRET_KEY_FILE) == 0o600
