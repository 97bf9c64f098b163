"""Time-ordered keys (``ils.ids.ordered_id``, UUIDv7) against random ones (uuid4), on SQLite.

Why: every row ILS writes goes into its table's primary-key index. A company
notification stores one row per recipient in one transaction (100 for the demo lab);
with random keys each row lands on another leaf page of the ``id`` index, and every
dirty page is written to the WAL at commit and copied back by a checkpoint, both on
the server's event loop on the embedded default.

How: the real tables (``notifications`` and the local job store's ``ils_jobs``, with
all their indexes, from the models' metadata) in a fresh SQLite file each, WAL mode
and ``synchronous=NORMAL`` as ILS opens them, SQLite's automatic checkpoint on. Each
transaction inserts rows and commits: a company notification's (``--recipients``,
100: the demo lab's users) or an order's jobs (``--jobs``, 5). ``--prefill``
transactions first (an index that already holds rows), then ``--transactions`` timed.
Random and time-ordered keys alternate, ``--repeat`` times each, so drift hits both
alike. Prints milliseconds a transaction (insert and
commit, p50 and the mean, checkpoints included) and the bytes the process wrote a
transaction (``/proc/self/io`` ``wchar``: the WAL and the checkpoints' copies), with
the ratio of time-ordered to random.

    .venv/bin/python bench/ids.py [--recipients 100] [--jobs 5] [--prefill 300]
        [--transactions 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

import ils.db.tables  # noqa: F401  (every model's table in Base.metadata)
from ils.db.engine import Base
from ils.ids import ordered_id

KEYS: dict[str, Callable[[], str]] = {"uuid4": lambda: uuid.uuid4().hex, "uuidv7": ordered_id}


def written_bytes() -> int:
    """Bytes this process has passed to write() so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def ddl(table_name: str) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements of one model table, for SQLite."""
    table = Base.metadata.tables[table_name]
    dialect = sqlite.dialect()
    statements = [str(CreateTable(table).compile(dialect=dialect))]
    statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return statements


@contextmanager
def database(table_name: str) -> Iterator[sqlite3.Connection]:
    """A fresh SQLite file holding ``table_name``, opened as ILS opens its database."""
    with tempfile.TemporaryDirectory(prefix="ils-ids-") as folder:
        conn = sqlite3.connect(Path(folder) / "bench.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in ddl(table_name):
            conn.execute(statement)
        try:
            yield conn
        finally:
            conn.close()


def notification_rows(key: Callable[[], str], rows: int, users: list[str]) -> list[dict[str, Any]]:
    """One company notification's rows: one per recipient, keyed by job and user."""
    job = uuid.uuid4().hex
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return [
        {
            "id": key(),
            "company_id": "lab",
            "user_id": user,
            "kind": "order",
            "priority": "high",
            "title": "Order ORD-2026-000123: submitted",
            "message": "Brightside Opticians placed an order for you to review.",
            "link": "/orders/0123",
            "read_at": None,
            "emailed_at": None,
            "job_id": f"{job}/{user}",
            "created_at": now,
        }
        for user in users[:rows]
    ]


def job_rows(key: Callable[[], str], rows: int, users: list[str]) -> list[dict[str, Any]]:
    """One order's jobs (``rows`` of them), as the local store adds them."""
    now = int(time.time() * 1000)
    return [
        {
            "id": key(),
            "queue": "email",
            "name": "order-confirmation",
            "data": json.dumps({"type": "order-confirmation", "orderId": key(), "userId": user}),
            "company_id": "practice",
            "state": "waiting",
            "priority": 2,
            "attempts": 5,
            "attempts_made": 0,
            "attempts_started": 0,
            "stalled_count": 0,
            "backoff_delay_ms": 2000,
            "delay_ms": 0,
            "run_at_ms": now,
            "stacktrace": "[]",
            "created_at_ms": now,
        }
        for user in users[:rows]
    ]


#: What is timed: a title, the table, how a transaction's rows are made, and the
#: option that says how many rows a transaction holds.
TABLES: list[tuple[str, str, Callable[..., list[dict[str, Any]]], str]] = [
    (
        "notifications, a company notification a transaction",
        "notifications",
        notification_rows,
        "recipients",
    ),
    ("ils_jobs, an order's jobs a transaction", "ils_jobs", job_rows, "jobs"),
]


def run(
    table_name: str,
    make_rows: Callable[..., list[dict[str, Any]]],
    count: int,
    key: Callable[[], str],
    args: argparse.Namespace,
) -> tuple[list[float], float]:
    """Milliseconds of each timed transaction of ``count`` rows, and bytes written a
    transaction."""
    users = [uuid.uuid4().hex for _ in range(count)]
    table = Base.metadata.tables[table_name]
    # The columns every transaction's rows give (make_rows always gives the same ones),
    # so the statement is compiled once.
    given = make_rows(key, 1, users)[0]
    sql = str(
        insert(table)
        .values(
            {
                column.name: bindparam(column.name)
                for column in table.columns
                if column.name in given
            }
        )
        .compile(dialect=sqlite.dialect(paramstyle="named"))
    )
    with database(table_name) as conn:
        times: list[float] = []
        written = 0
        for number in range(args.prefill + args.transactions):
            rows = make_rows(key, count, users)
            before_bytes = written_bytes()
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
            if number >= args.prefill:
                times.append(elapsed * 1000)
                written += written_bytes() - before_bytes
        return times, written / args.transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipients", type=int, default=100, help="notification rows a transaction"
    )
    parser.add_argument("--jobs", type=int, default=5, help="job rows a transaction")
    parser.add_argument("--prefill", type=int, default=300)
    parser.add_argument("--transactions", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"SQLite {sqlite3.sqlite_version}, "
        f"{args.prefill} transactions before {args.transactions} timed, {args.repeat} runs "
        "of each key, alternated"
    )
    for title, table_name, make_rows, option in TABLES:
        count = getattr(args, option)
        results: dict[str, list[tuple[list[float], float]]] = {name: [] for name in KEYS}
        for _ in range(args.repeat):
            for name, key in KEYS.items():
                results[name].append(run(table_name, make_rows, count, key, args))
        print(f"\n{title} ({count} rows)")
        summary: dict[str, tuple[float, float, float]] = {}
        for name, runs in results.items():
            p50 = statistics.median(statistics.median(times) for times, _ in runs)
            mean = statistics.median(statistics.fmean(times) for times, _ in runs)
            written = statistics.median(written for _, written in runs)
            summary[name] = (p50, mean, written)
            print(
                f"  {name:7} p50 {p50:6.2f} ms  mean {mean:6.2f} ms  "
                f"written {written / 1024:8.0f} KiB a transaction  (median of {len(runs)} runs)"
            )
        (p50_new, mean_new, written_new), (p50_old, mean_old, written_old) = (
            summary["uuidv7"],
            summary["uuid4"],
        )
        print(
            f"  uuidv7 / uuid4: p50 {p50_new / p50_old:.2f}x  mean {mean_new / mean_old:.2f}x  "
            f"written {written_new / written_old:.2f}x"
        )


if __name__ == "__main__":
    main()
