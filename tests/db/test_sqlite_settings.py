"""What every SQLite connection of ILS is set to (``ils.db.engine.configure_sqlite``)."""

from __future__ import annotations

from pathlib import Path

from ils.db.engine import create_engine


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
            # SQLite's default: a checkpoint every 1,000 pages (docs/performance.md,
            # 2026-12-07 afternoon, for 10,000 tried and not kept).
            "wal_autocheckpoint": 1000,
        }
    finally:
        await engine.dispose()
