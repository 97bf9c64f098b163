"""OMA worker figures: tracing files per second through parse, decode, measure and check.

For each real file of ``tests/data/oma`` and a synthetic two-eye 1000-point job
file (declared sizes, prescription, ``DO=B``), runs what the ``oma`` job does with the
bytes, in this process and without a database: :func:`parse`, :func:`tracings`,
:func:`measure_set`, :func:`check` against an order's frame and prescription, and the
work ticket's outline. Prints files/s, ms per file and MB/s per file, then for all of
them in turn (the mix a lab would upload). Each file gets an equal share of
``--seconds``, after a warm-up run.

    .venv/bin/python bench/oma.py [--seconds 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ils.workers.oma.checks import OrderFrame, OrderRx, check
from ils.workers.oma.measure import measure_set, ticket_outline
from ils.workers.oma.records import OmaDocument, Record, parse, write
from ils.workers.oma.tracing import tracings

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "oma"
FRAME = OrderFrame(box_a=51.0, box_b=40.0, ed=57.0, dbl=15.0)
RX = {"R": OrderRx(1.25, -0.5, 90), "L": OrderRx(-0.5, -0.25, 180)}


def synthetic(points: int = 1000) -> bytes:
    """A two-eye job file: a rounded 52 x 38 mm lens traced with ``points`` radii."""
    radii = []
    for i in range(points):
        t = 2 * math.pi * i / points
        c, s = abs(math.cos(t)), abs(math.sin(t))
        # A superellipse |x/a|^4 + |y/b|^4 = 1 (a rectangle with round corners).
        radii.append(round(100 / ((c / 26.0) ** 4 + (s / 19.0) ** 4) ** 0.25))
    header = [
        Record("REQ", ("FIL",)),
        Record("JOB", ("BENCH1",)),
        Record("DO", ("B",)),
        Record("SPH", ("+1.25", "-0.50")),
        Record("CYL", ("-0.50", "-0.25")),
        Record("AX", ("90", "180")),
        Record("HBOX", ("52.00", "52.00")),
        Record("VBOX", ("38.00", "38.00")),
        Record("DBL", ("15.00",)),
    ]
    records = list(header)
    for side in ("R", "L"):
        ordered = (
            radii if side == "R" else [radii[(points // 2 - i) % points] for i in range(points)]
        )
        records.append(Record("TRCFMT", ("1", str(points), "E", side, "F")))
        records += [
            Record("R", tuple(str(r) for r in ordered[i : i + 10])) for i in range(0, points, 10)
        ]
    return write(OmaDocument(tuple(records)))


def process(data: bytes) -> None:
    """What the job does with a file's bytes."""
    doc = parse(data)
    found = tracings(doc)
    measured = measure_set(found)
    check(doc, found, measured, FRAME, RX)
    ticket_outline(found)


def rate(files: list[bytes], seconds: float) -> tuple[float, float]:
    """Files per second and bytes per second, the files processed in turn."""
    for data in files:
        process(data)  # warm-up: imports, first allocations
    count = size = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for data in files:
            process(data)
            size += len(data)
        count += len(files)
    elapsed = time.perf_counter() - start
    return count / elapsed, size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="total measuring time")
    parser.add_argument("--data", type=Path, default=DATA, help="directory of .oma files")
    args = parser.parse_args()

    named = [(path.name, path.read_bytes()) for path in sorted(args.data.glob("*.oma"))]
    named.append(("synthetic-1000", synthetic()))
    share = args.seconds / (len(named) + 1)
    print(f"parse + decode + measure + check + outline, {share:.2f} s per line")
    print(f"{'file':<16} {'size':>9} {'files/s':>9} {'ms/file':>8} {'MB/s':>6}")
    for name, data in named:
        per_second, throughput = rate([data], share)
        print(
            f"{name:<16} {len(data) / 1024:>5.1f} KiB {per_second:>9.0f} {1000 / per_second:>8.3f}"
            f" {throughput / 1e6:>6.2f}"
        )
    per_second, throughput = rate([data for _, data in named], share)
    print(
        f"{'all, in turn':<16} {'':>9} {per_second:>9.0f} {1000 / per_second:>8.3f}"
        f" {throughput / 1e6:>6.2f}"
    )


if __name__ == "__main__":
    main()
