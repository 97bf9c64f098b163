"""Read what ``bench/server_timing`` wrote for the processes of a run: the measured
window's share of SQLite, commit and collector time, and its slow calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The folder whose ``sitecustomize.py`` times a server (on its ``PYTHONPATH``).
TIMING_PATH = Path(__file__).resolve().parents[1] / "server_timing"


@dataclass(frozen=True)
class WindowTiming:
    """One process's calls between two moments: seconds and counts per kind of call,
    and the calls over the slow threshold."""

    pid: int
    seconds: dict[str, float]
    #: Of ``seconds``, the time the calling thread ran (the rest it waited).
    cpu_seconds: dict[str, float]
    counts: dict[str, int]
    slow: list[tuple[float, float, str]]


def _nearest(snapshots: list[dict[str, Any]], moment: float) -> dict[str, Any] | None:
    """The last snapshot written at or before ``moment`` (or the first after it)."""
    before = [s for s in snapshots if s["at"] <= moment]
    if before:
        return before[-1]
    return snapshots[0] if snapshots else None


def window_timings(prefix: str, start: float, end: float) -> list[WindowTiming]:
    """Each timed process's share of ``[start, end]`` (``CLOCK_MONOTONIC`` seconds)."""
    timings = []
    for path in sorted(Path(prefix).parent.glob(f"{Path(prefix).name}.*.jsonl")):
        # The last line may be cut short: the process was killed while writing it.
        snapshots = []
        for line in path.read_text().splitlines():
            try:
                snapshots.append(json.loads(line))
            except json.JSONDecodeError:
                break
        first, last = _nearest(snapshots, start), _nearest(snapshots, end)
        if first is None or last is None:
            continue
        seconds = {
            key: value - first["seconds"].get(key, 0.0) for key, value in last["seconds"].items()
        }
        counts = {key: value - first["counts"].get(key, 0) for key, value in last["counts"].items()}
        cpu_before, cpu_after = first.get("cpu_seconds", {}), last.get("cpu_seconds", {})
        cpu = {key: value - cpu_before.get(key, 0.0) for key, value in cpu_after.items()}
        slow = [tuple(c) for s in snapshots for c in s["slow"] if start <= c[0] < end]
        pid = int(path.name.removesuffix(".jsonl").rsplit(".", 1)[-1])
        timings.append(WindowTiming(pid, seconds, cpu, counts, slow))  # type: ignore[arg-type]
    return timings


#: Keys of the timings that are not SQLite calls: the collector, the write turn, and
#: the event loop's long callbacks; the last two are listed apart, under these titles.
APART = {"write turn": "the write turn", "loop stall": "the event loop's long callbacks"}
NOT_SQLITE = ("GC", *APART)


def report_lines(timings: list[WindowTiming], duration_s: float, top: int = 8) -> list[str]:
    """A few lines per process: the costliest kinds of call and the slow ones."""
    lines = []
    for timing in timings:
        sql = sum(v for k, v in timing.seconds.items() if not k.startswith(NOT_SQLITE))
        collector = {k: v for k, v in timing.seconds.items() if k.startswith("GC")}
        lines.append(
            f"  process {timing.pid}: SQLite {sql:.2f} s ({100 * sql / duration_s:.1f} % of the "
            "window), collector "
            + ", ".join(
                f"{k.removeprefix('GC generation ')}: {v * 1000:.0f} ms in {timing.counts[k]}"
                f" ({timing.counts.get(f'{k} collected', 0):,} objects freed)"
                for k, v in sorted(collector.items())
            )
        )
        costly = sorted(
            ((v, k) for k, v in timing.seconds.items() if not k.startswith(NOT_SQLITE)),
            reverse=True,
        )
        lines.append("    wall s   (cpu s)   calls x    ms  call")
        for seconds, key in costly[:top]:
            count = timing.counts.get(key, 0)
            cpu = timing.cpu_seconds.get(key, 0.0)
            each_ms = 1000 * seconds / max(count, 1)
            lines.append(f"    {seconds:6.2f} ({cpu:6.2f}) {count:7d} x {each_ms:5.2f}  {key}")
        for prefix, title in APART.items():
            apart = sorted(
                ((v, k) for k, v in timing.seconds.items() if k.startswith(prefix)), reverse=True
            )
            if apart:
                lines.append(f"    {title}: wall s   calls x    ms")
            for seconds, key in apart[:top]:
                count = timing.counts.get(key, 0)
                lines.append(
                    f"    {seconds:6.2f} {count:7d} x {1000 * seconds / max(count, 1):5.2f}  {key}"
                )
        lines.append(f"    {len(timing.slow)} calls over the slow threshold in the window")
        for _, took, key in timing.slow[:top]:
            lines.append(f"      {took * 1000:6.1f} ms  {key}")
    return lines
