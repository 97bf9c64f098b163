"""ILS against other Python job libraries on one Redis, in one run (issue 21).

    .venv/bin/python -m bench.peers [--quick] [--repeat 3] [--only ils,taskiq] [--out FILE]

Each library is used the way its documentation shows: its own producer in this process,
its own worker command as a child process at concurrency 10. Every job, in every
library, takes its start time, sleeps 0 ms (no-op) or ``--io-ms`` / ``--kill-ms``, takes
its end time and records both with one extra Redis round trip. Measured per library:
enqueue rates (one by one, from ``--lanes`` concurrent tasks, bulk where the library has
a bulk call), draining a ``--drain`` backlog, pickup latency with jobs offered at
``--rate`` per second, ``--io-ms`` jobs at concurrency 10, and a kill test: ``--kill-jobs``
jobs of ``--kill-ms``, the worker's process group SIGKILLed ``--kill-after`` seconds
after the first job started, a fresh worker, and ``--recovery`` seconds to finish.

Repetitions are interleaved (every library does a measurement before any does the
next, in an order rotated each repetition) so that drift on a shared machine hits every
library alike. The figures are ratios measured side by side in the same run, not
absolute numbers. Prints a Markdown report (the machine, the table of medians with
ranges, ILS against the best peer); progress goes to stderr. The run takes a Redis
database that is empty (the highest free one, or ``--db``), empties it between
measurements and at the end, and never touches another database.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

LIBRARIES = {
    "ils": "ILS",
    "bullmq": "bullmq",
    "taskiq": "taskiq",
    "dramatiq": "dramatiq",
    "saq": "SAQ",
    "arq": "arq",
    "rq": "RQ",
    "celery": "Celery",
}
DISTRIBUTIONS = {
    "ILS": "ils",
    "bullmq": "bullmq",
    "taskiq": "taskiq",
    "taskiq-redis": "taskiq-redis",
    "dramatiq": "dramatiq",
    "SAQ": "saq",
    "arq": "arq",
    "RQ": "rq",
    "Celery": "celery",
    "kombu": "kombu",
}
FULL = {
    "repeat": 3,
    "enqueue": 2000,
    "drain": 10_000,
    "pickups": 500,
    "io_jobs": 1000,
    "kill_jobs": 200,
    "recovery": 90.0,
}
QUICK = {
    "repeat": 1,
    "enqueue": 200,
    "drain": 500,
    "pickups": 50,
    "io_jobs": 100,
    "kill_jobs": 30,
    "recovery": 10.0,
}
SERVER = "redis://127.0.0.1:6379"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes and one repetition: a smoke run")
    add("--only", default="", help=f"libraries, comma-separated, of {','.join(LIBRARIES)}")
    add("--repeat", type=int, help="repetitions (3; quick 1)")
    add("--enqueue", type=int, help="jobs per enqueue figure (2000; quick 200)")
    add("--lanes", type=int, default=50, help="concurrent enqueuing tasks (50)")
    add("--batch", type=int, default=500, help="jobs per bulk call (500)")
    add("--drain", type=int, help="no-op backlog drained (10000; quick 500)")
    add("--pickups", type=int, help="jobs of the pickup figure (500; quick 50)")
    add("--rate", type=float, default=100.0, help="jobs/s offered for pickup (100)")
    add("--io-jobs", type=int, help="I/O jobs (1000; quick 100)")
    add("--io-ms", type=int, default=50, help="sleep of an I/O job, ms (50)")
    add("--kill-jobs", type=int, help="jobs of the kill test (200; quick 30)")
    add("--kill-ms", type=int, default=1000, help="sleep of a kill-test job, ms (1000)")
    add("--kill-after", type=float, default=3.0, help="s from first start to SIGKILL (3)")
    add("--recovery", type=float, help="s after the kill for every job to be done (90)")
    add("--no-kill", action="store_true", help="skip the kill test")
    add("--concurrency", type=int, default=10, help="worker slots (10)")
    add("--db", type=int, help="Redis database to use (must be empty; default: highest free)")
    add("--out", type=Path, help="also write the report to this file")
    return parser.parse_args()


async def free_database(requested: int | None) -> int:
    admin = Redis.from_url(f"{SERVER}/0")
    try:
        used = {int(name[2:]) for name in (await admin.info("keyspace"))}
        try:
            count = int((await admin.config_get("databases"))["databases"])
        except Exception:
            count = 16
    finally:
        await admin.aclose()
    if requested is not None:
        if requested in used:
            raise SystemExit(f"Redis database {requested} is not empty: pick another --db")
        return requested
    for db in range(count - 1, 0, -1):
        if db not in used:
            return db
    raise SystemExit("no empty Redis database: pass --db")


def log(message: str) -> None:
    print(f"[{time.strftime('%X')}] {message}", file=sys.stderr, flush=True)


async def main() -> None:
    args = parse_args()
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    selected = [k.strip().lower() for k in args.only.split(",") if k.strip()] or list(LIBRARIES)
    unknown = [k for k in selected if k not in LIBRARIES]
    if unknown:
        raise SystemExit(f"unknown libraries {unknown}; choose from {','.join(LIBRARIES)}")

    db = await free_database(args.db)
    run = f"peers{uuid.uuid4().hex[:6]}"
    url = f"{SERVER}/{db}"
    # Read by bench.peers.common when the peer modules are imported, here and in workers.
    os.environ["PEERS_REDIS_URL"] = url
    os.environ["PEERS_RUN"] = run
    os.environ["PEERS_CONCURRENCY"] = str(args.concurrency)
    scratch = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    os.environ["PEERS_ILS_DATA"] = str(scratch / "ils-data")

    from bench.peers import report
    from bench.peers.measure import Bench, Sizes

    sizes = Sizes(
        repeat=args.repeat,
        enqueue=args.enqueue,
        lanes=args.lanes,
        batch=args.batch,
        drain=args.drain,
        pickups=args.pickups,
        rate=args.rate,
        io_jobs=args.io_jobs,
        io_ms=args.io_ms,
        kill_jobs=args.kill_jobs,
        kill_ms=args.kill_ms,
        kill_after=args.kill_after,
        recovery=args.recovery,
    )
    names = {k: LIBRARIES[k] for k in LIBRARIES if k in selected}
    peers: dict[str, Any] = {}
    results: report.Results = {}
    problems: list[str] = []
    for key in names:
        try:
            module = importlib.import_module(f"bench.peers.{key}_peer")
            peers[key] = module.Producer()
            results[key] = {}
        except Exception as exc:
            problems.append(f"{names[key]}: not run, its module failed to load: {exc!r}")
            log(problems[-1])

    bench = Bench(url, sizes, scratch)
    server = await bench.redis.info("server")
    loads = [os.getloadavg()]
    log(f"Redis db {db}, run {run}, worker logs in {scratch}")
    scenarios: list[tuple[str, Callable[..., Awaitable[dict[str, float]]], tuple[str, ...]]] = [
        ("enqueue", bench.enqueue, ("enq_one", "enq_lanes", "enq_bulk")),
        ("work", bench.work, ("drain", "pick50", "pick99", "io")),
    ]
    if not args.no_kill:
        scenarios.append(("kill", bench.kill, ("lost", "twice", "all_done")))
    started = time.monotonic()
    try:
        for rep in range(sizes.repeat):
            order = list(peers)
            order = order[rep % len(order) :] + order[: rep % len(order)] if order else order
            for scenario, measure, keys in scenarios:
                for key in order:
                    peer = peers[key]
                    t0 = time.monotonic()
                    try:
                        got = await measure(peer, rep)
                    except Exception as exc:
                        detail = "".join(traceback.format_exception_only(exc)).strip()
                        problems.append(f"{peer.name}, {scenario}, repetition {rep + 1}: {detail}")
                        log(problems[-1])
                        got = dict.fromkeys(keys)  # type: ignore[arg-type]
                        if not peer.bulk:
                            got.pop("enq_bulk", None)
                    for name, value in got.items():
                        results[key].setdefault(name, []).append(value)
                    shown = ", ".join(
                        f"{k} {v:.1f}" if v is not None else f"{k} failed" for k, v in got.items()
                    )
                    log(
                        f"rep {rep + 1} {scenario:<7} {peer.name:<8} {shown} "
                        f"({time.monotonic() - t0:.0f} s)"
                    )
    finally:
        await bench.wipe()
        await bench.redis.aclose()
    loads.append(os.getloadavg())

    figs = report.figures(sizes, args.concurrency)
    if args.no_kill:
        figs = [f for f in figs if f.key not in ("lost", "twice", "all_done")]
    out = [
        f"## Job libraries side by side ({time.strftime('%Y-%m-%d', time.gmtime())})",
        "",
        "Figures are ratios measured side by side in the same run on this machine, not "
        "absolute numbers: every library ran against the same Redis, interleaved over "
        f"{sizes.repeat} repetition(s) (median, and the range over repetitions in "
        f"brackets). Run time {(time.monotonic() - started) / 60:.0f} min.",
        "",
        *report.machine(server.get("redis_version", "?"), loads),
        f"- versions: {report.versions(DISTRIBUTIONS)}",
        f"- sizes: enqueue {sizes.enqueue} jobs per figure, {sizes.lanes} lanes, bulk "
        f"{sizes.batch} a call; drain {sizes.drain}; pickup {sizes.pickups} jobs at "
        f"{sizes.rate:g}/s; {sizes.io_jobs} jobs of {sizes.io_ms} ms; kill test "
        f"{sizes.kill_jobs} jobs of {sizes.kill_ms} ms, SIGKILL {sizes.kill_after:g} s after "
        f"the first start, {sizes.recovery:g} s to recover",
        "",
        report.table(names, results, figs, sizes),
        "",
    ]
    best = report.against_best(names, results, figs)
    if best:
        out += ["ILS against the best other library (medians):", "", *best, ""]
    if problems:
        out += ["Problems:", "", *(f"- {p}" for p in problems), ""]
    text = "\n".join(out)
    print(text)
    if args.out:
        args.out.write_text(text)
    log(f"worker logs kept in {scratch}")


if __name__ == "__main__":
    asyncio.run(main())
