"""The collector's tuning for long-running processes (``ils.heap``).

Each case runs in a child process: the tuning changes the interpreter's collector for
good, and freezing would keep this test run's objects forever.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: A server after its users came in: many objects made after start-up and kept (the
#: sessions and streams), then bursts of objects alive at once for a moment (a
#: request, a fan-out to every stream), freed by reference counting. (Instances, not
#: dicts of plain values: CPython does not track those at all.)
SERVER_LIKE_LOAD = textwrap.dedent(
    """
    import gc, sys
    from ils.heap import tune_garbage_collector

    if sys.argv[1] == "tuned":
        tune_garbage_collector()
    else:
        gc.collect()
        gc.freeze()
    class Row:
        def __init__(self, n):
            self.n = n

    full_passes = []
    gc.callbacks.append(
        lambda phase, info: full_passes.append(1)
        if phase == "stop" and info["generation"] == 2 else None
    )
    kept = [Row(n) for n in range(200_000)]
    for _ in range(100):
        burst = [Row(n) for n in range(20_000)]
        del burst
    print(len(full_passes))
    """
)


def full_passes(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SERVER_LIKE_LOAD, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(done.stdout)


def test_bursts_of_short_lived_objects_do_not_cause_full_collections() -> None:
    # Freezing alone leaves CPython's young threshold of 700: each burst is promoted
    # while alive and the full passes over the kept objects come again and again.
    assert full_passes("frozen only") >= 10
    assert full_passes("tuned") <= 1
