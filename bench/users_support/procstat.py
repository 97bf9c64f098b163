"""Memory and CPU of a process tree from ``/proc`` (Linux; psutil is not a dependency).

The tree is the process and every descendant alive at the moment of the reading: for
``ils serve`` that is the server and the PDF / AI render pools it forks. RSS counts a
page shared by two processes twice (forked pools share the parent's pages until they
write them), so PSS (``/proc/PID/smaps_rollup``, shared pages divided among their
sharers) is read too where the kernel allows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class TreeReading:
    """One reading of a process tree."""

    processes: int
    rss_bytes: int
    pss_bytes: int | None
    #: User + system CPU seconds of the processes alive now, plus what the root has
    #: collected from children it reaped.
    cpu_s: float


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    return text[text.rfind(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, found by walking parent ids."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _kib_field(path: Path, name: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (and of its reaped children if ``reaped``)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def read_tree(root: int) -> TreeReading:
    """RSS, PSS and CPU of ``root``'s tree now."""
    pids = descendants(root)
    rss, pss, pss_known, cpu = 0, 0, True, 0.0
    for pid in pids:
        rss += _kib_field(PROC / str(pid) / "status", "VmRSS:") or 0
        one = _kib_field(PROC / str(pid) / "smaps_rollup", "Pss:")
        if one is None:
            pss_known = False
        else:
            pss += one
        cpu += cpu_seconds(pid, reaped=pid == root)
    return TreeReading(len(pids), rss, pss if pss_known else None, cpu)
