"""The Markdown report: the machine, the table of medians and ranges, ILS against the best peer."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import redis.utils
from bench.peers.measure import Sizes

#: Per library and figure, one value per repetition (None: that repetition failed).
Results = dict[str, dict[str, list[float | None]]]


@dataclass(frozen=True)
class Figure:
    key: str
    header: str
    higher_is_better: bool
    unit: str


def figures(sizes: Sizes, concurrency: int) -> list[Figure]:
    ideal = concurrency * 1000 / sizes.io_ms
    return [
        Figure("enq_one", "enqueue 1 by 1, jobs/s", True, "jobs/s"),
        Figure("enq_lanes", f"enqueue from {sizes.lanes} tasks, jobs/s", True, "jobs/s"),
        Figure("enq_bulk", f"bulk enqueue ({sizes.batch} a call), jobs/s", True, "jobs/s"),
        Figure("drain", f"drain {sizes.drain:,} no-op, jobs/s", True, "jobs/s"),
        Figure("pick50", f"pickup p50 at {sizes.rate:g}/s, ms", False, "ms"),
        Figure("pick99", f"pickup p99 at {sizes.rate:g}/s, ms", False, "ms"),
        Figure(
            "io",
            f"{sizes.io_ms} ms jobs at concurrency {concurrency}, jobs/s (ideal {ideal:.0f})",
            True,
            "jobs/s",
        ),
        Figure("lost", f"kill -9: lost of {sizes.kill_jobs}", False, "jobs"),
        Figure("twice", "kill -9: run twice", False, "jobs"),
        Figure("all_done", "kill -9: all done after, s", False, "s"),
    ]


def number(value: float, unit: str) -> str:
    if math.isinf(value):
        return "never"
    if unit == "jobs/s":
        return f"{value:,.0f}"
    if unit == "jobs":
        return f"{value:.0f}"
    if unit == "s":
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cell(values: list[float | None] | None, unit: str, recovery: float) -> str:
    if values is None:
        return "—"
    ok = [v for v in values if v is not None]
    failed = len(values) - len(ok)
    if not ok:
        return "failed"
    if unit == "s" and all(math.isinf(v) for v in ok):
        text = f"not within {recovery:.0f}"
    else:
        low, mid, high = min(ok), statistics.median(ok), max(ok)
        text = number(mid, unit)
        if len(ok) > 1 and number(low, unit) != number(high, unit):
            text += f" ({number(low, unit)}-{number(high, unit)})"
    if failed:
        text += f" ({failed} of {len(values)} failed)"
    return text


def table(names: dict[str, str], results: Results, figs: Sequence[Figure], sizes: Sizes) -> str:
    lines = [
        "| library | " + " | ".join(f.header for f in figs) + " |",
        "|---|" + "---:|" * len(figs),
    ]
    for key, name in names.items():
        row = results.get(key, {})
        cells = [cell(row.get(f.key), f.unit, sizes.recovery) for f in figs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_of(values: list[float | None] | None) -> float | None:
    ok = [v for v in values or [] if v is not None]
    return statistics.median(ok) if ok else None


def against_best(names: dict[str, str], results: Results, figs: Sequence[Figure]) -> list[str]:
    """ILS's median against the best other library's median, figure by figure."""
    if "ils" not in results:
        return []
    lines = []
    for fig in figs:
        ours = median_of(results["ils"].get(fig.key))
        peers = {
            key: m
            for key in names
            if key != "ils" and (m := median_of(results.get(key, {}).get(fig.key))) is not None
        }
        if ours is None or not peers:
            continue
        pick = max if fig.higher_is_better else min
        best_key = pick(peers, key=lambda k: peers[k])
        best = peers[best_key]
        rank = 1 + sum(
            1 for m in peers.values() if (m > ours if fig.higher_is_better else m < ours)
        )
        place = f"{rank} of {len(peers) + 1}"
        if fig.unit in ("jobs", "s") or best == 0 or math.isinf(best) or math.isinf(ours):
            lines.append(
                f"- {fig.header}: ILS {number(ours, fig.unit)}, best peer "
                f"{names[best_key]} {number(best, fig.unit)} (ILS ranks {place})"
            )
            continue
        lines.append(
            f"- {fig.header}: ILS {number(ours, fig.unit)} = {ours / best:.2f}x the best peer "
            f"({names[best_key]}, {number(best, fig.unit)}); ILS ranks {place}"
        )
    return lines


def machine(redis_version: str, loads: Sequence[tuple[float, float, float]]) -> list[str]:
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    load_text = ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in loads)
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} cores (`nproc`), {model}, {memory} of memory, "
        f"{platform.system()} {platform.release()}",
        f"- load average (1/5/15 min) at start, end: {load_text}",
        f"- Redis {redis_version} on 127.0.0.1:6379, the same server for every library; "
        f"Python {platform.python_version()}; redis-py {version('redis')} "
        f"(hiredis parser: {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'})",
    ]


def versions(distributions: dict[str, str]) -> str:
    parts = []
    for name, dist in distributions.items():
        try:
            parts.append(f"{name} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)
