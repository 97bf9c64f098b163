"""What every SQLite connection of ILS is set to (``ils.db.engine.configure_sqlite``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from ils.db.engine import create_engine

SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000

PAGE_BYTES = 4096


def wal_pages(database: Path) -> int:
    """Pages the database's WAL file holds (it is reused from the start, not shrunk,
    after a checkpoint)."""
    return Path(f"{database}-wal").stat().st_size // PAGE_BYTES


async def test_each_connection_gets_the_settings(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        for _ in range(2):  # a second connection, opened while the first is held
            async with engine.connect() as conn:
                settings = {
                    name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in (
                        "journal_mode",
                        "synchronous",
                        "foreign_keys",
                        "wal_autocheckpoint",
                    )
                }
        assert settings == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL: durable in WAL mode but for a power cut
            "foreign_keys": 1,
            "wal_autocheckpoint": SQLITE_WAL_AUTOCHECKPOINT_PAGES,
        }
    finally:
        await engine.dispose()


async def test_commits_copy_the_wal_back_only_after_many_pages(tmp_path: Path) -> None:
    """Writing 3,000 pages in small commits leaves them in the WAL: SQLite's default
    (1,000 pages) would have copied them back and started the WAL over twice, each
    time in a commit on the event loop."""
    path = tmp_path / "app.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)"))
        for _ in range(30):
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO blobs (data) VALUES (randomblob(:size))"),
                    [{"size": PAGE_BYTES}] * 100,
                )
        assert wal_pages(path) > 3000
    finally:
        await engine.dispose()
