"""CPU milliseconds per API request, in-process: what one request of each kind costs the
server's event loop, the figure that holds 1,000 users back on two cores (issue 21).

Why: under ``bench/users.py`` the web process is saturated (py-spy: about three
quarters of its samples are HTTP requests), so the next gains are fewer CPU
milliseconds per request. A load test is slow and noisy for finding them; this runs
each request back to back on one process, with no network and no other load, so a
change shows in seconds.

How: builds the demo network in a fresh data directory (the embedded default, SQLite),
runs the app's lifespan without workers, signs in as the demo lab's admin (a lab
lists every order made for it, the heavier list), and sends each
request ``--requests`` times through httpx's ASGI transport (after 50 to warm up).
The CPU time of the process (``time.process_time``) per request includes the client's
own share, so ``GET /healthz/live`` (no session, no database) is measured too as the
floor, and each figure is also printed as a multiple of it. ``--profile`` prints the
cProfile functions with the most time of their own over one more round of every path.

    .venv/bin/python bench/request_cpu.py [--requests 300] [--profile]
        [--path /api/orders --path /api/notifications ...] [--more-orders 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import httpx
import sqlalchemy
from rich.console import Console

from ils.demo.setup import CREDENTIALS_FILE, prepare_demo
from ils.domain.orders import Order
from ils.settings import Settings
from ils.web.app import create_app

FLOOR: Final = "/healthz/live"
#: The reads the users of bench/users.py make most.
DEFAULT_PATHS: Final = ("/api/orders", "/api/orders?status=submitted", "/api/notifications")
WARM_UP: Final = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per path")
    parser.add_argument(
        "--path", action="append", default=[], help="a GET path (repeatable; default: hot reads)"
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument(
        "--more-orders",
        type=int,
        default=0,
        help="copies of the demo's orders to add first, older than them (a lab's history)",
    )
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if args.more_orders < 0:
        parser.error("--more-orders must not be negative")
    return args


def add_history(database_url: str, count: int) -> None:
    """``count`` more orders, copies of the demo's with new ids and numbers, each a
    minute older than the last: a list then has a long history behind its first page."""
    orders = Order.__table__
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as db:
            demo = [dict(row._mapping) for row in db.execute(sqlalchemy.select(orders))]
            oldest = min(row["created_at"] for row in demo)
            rows = []
            for n in range(count):
                at = oldest - timedelta(minutes=n + 1)
                row = dict(demo[n % len(demo)])
                row.update(id=uuid.uuid4().hex, number=f"ORD-H-{n:08d}", created_at=at)
                row.update(updated_at=at)
                rows.append(row)
            db.execute(sqlalchemy.insert(orders), rows)
    finally:
        engine.dispose()


async def cpu_ms_per_request(client: httpx.AsyncClient, path: str, requests: int) -> float:
    """Process CPU milliseconds per ``GET path``; any answer but 200 stops the run."""
    for _ in range(WARM_UP):
        await _get(client, path)
    started = time.process_time()
    for _ in range(requests):
        await _get(client, path)
    return (time.process_time() - started) / requests * 1000


async def _get(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"GET {path} answered {response.status_code}")


async def main() -> None:
    args = parse_args()
    paths = args.path or list(DEFAULT_PATHS)
    with tempfile.TemporaryDirectory(prefix="bench-request-cpu-") as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir)
        await prepare_demo(settings, Console(quiet=True), today=date.today())
        if args.more_orders:
            add_history(settings.effective_database_url, args.more_orders)
        credentials = json.loads((data_dir / CREDENTIALS_FILE).read_text())
        account = next(a for a in credentials["accounts"] if a["role"] == "admin")
        app = create_app(settings, start_workers=False)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            signed_in = await client.post(
                "/api/auth/sign-in",
                json={"email": account["email"], "password": credentials["password"]},
            )
            if signed_in.status_code != 200:
                raise SystemExit(f"sign-in answered {signed_in.status_code}")
            floor = await cpu_ms_per_request(client, FLOOR, args.requests)
            history = f", {args.more_orders:,} more orders" if args.more_orders else ""
            print(
                f"CPU per request, {args.requests} each, as {account['email']} (SQLite{history}):"
            )
            print(f"  GET {FLOOR:<40} {floor:6.2f} ms  (the floor: client and framework)")
            for path in paths:
                cost = await cpu_ms_per_request(client, path, args.requests)
                print(f"  GET {path:<40} {cost:6.2f} ms  {cost / floor:5.1f}x the floor")
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                for path in paths:
                    for _ in range(args.requests):
                        await _get(client, path)
                profile.disable()
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
                print(out.getvalue())


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
