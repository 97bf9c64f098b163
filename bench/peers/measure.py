"""The measurements, each on one peer: its producer in this process, its worker as a child.

Every measurement starts and ends with the run's Redis database empty (``Bench.wipe``), so
nothing of one library or repetition is left for the next. Figures come from the jobs'
own records (``token start end`` in the ``DONE`` list) and the producer's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.peers.common import DONE, ROOT, Item, Peer
from bench.serving import pct
from redis.asyncio import Redis


@dataclass
class Sizes:
    repeat: int = 3
    enqueue: int = 2000
    lanes: int = 50
    batch: int = 500
    drain: int = 10_000
    pickups: int = 500
    rate: float = 100.0
    io_jobs: int = 1000
    io_ms: int = 50
    kill_jobs: int = 200
    kill_ms: int = 1000
    kill_after: float = 3.0
    recovery: float = 90.0
    #: A wait with no new job done for this long fails the measurement.
    stall: float = 60.0


class MeasurementError(Exception):
    pass


# -- worker processes ----------------------------------------------------------------


class WorkerProcess:
    """A peer's worker command in a session of its own (so a kill reaches its children)."""

    def __init__(self, peer: Peer, log_path: Path) -> None:
        self.peer = peer
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.reaped = False

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.peer.worker_env())
        self.log = self.log_path.open("ab")
        self.log.write(f"\n=== {time.strftime('%X')} start\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen(
            self.peer.worker_command(),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise MeasurementError(f"worker exited with code {self.proc.returncode}: {self.tail()}")

    def tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def _members(self) -> list[int]:
        """Live processes of the worker's session: its group, and groups its children
        made of their own (RQ's work horses call ``setpgrp``)."""
        if self.proc is None or self.reaped:
            return []
        sid, members = self.proc.pid, []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces.
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                members.append(int(entry.name))
        return members

    def _signal_group(self, sig: signal.Signals) -> None:
        # Never once the session was killed and its leader reaped: its id may be reused.
        if self.proc is None or self.reaped:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to every process of the worker's session, as a container stop would."""
        if self.proc is None or self.reaped:
            return
        for _ in range(50):
            members = self._members()
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        self.proc.wait()
        self.reaped = True

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (each library's graceful stop), then SIGKILL after ``grace`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            end = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < end:
                await asyncio.sleep(0.05)
        # Children a graceful stop left behind, or the whole group after the grace.
        self.kill()
        if self.log is not None:
            self.log.close()
            self.log = None


# -- producers -----------------------------------------------------------------------


async def enqueue_serial(peer: Peer, items: Sequence[Item]) -> float:
    """Seconds to queue ``items`` one after the other."""
    if peer.sync:

        def loop() -> float:
            t0 = time.perf_counter()
            for token, ms in items:
                peer.add_sync(token, ms)
            return time.perf_counter() - t0

        return await asyncio.to_thread(loop)
    t0 = time.perf_counter()
    for token, ms in items:
        await peer.add(token, ms)
    return time.perf_counter() - t0


async def enqueue_lanes(peer: Peer, items: Sequence[Item], lanes: int) -> float:
    """Seconds to queue ``items`` from ``lanes`` concurrent tasks (threads for sync peers)."""
    chunks = [items[n::lanes] for n in range(lanes)]
    if peer.sync:

        def run() -> float:
            barrier = threading.Barrier(lanes + 1)

            def lane(chunk: Sequence[Item]) -> None:
                barrier.wait()
                for token, ms in chunk:
                    peer.add_sync(token, ms)

            with ThreadPoolExecutor(lanes) as pool:
                futures = [pool.submit(lane, chunk) for chunk in chunks]
                barrier.wait()
                t0 = time.perf_counter()
                for future in futures:
                    future.result()
                return time.perf_counter() - t0

        return await asyncio.to_thread(run)

    async def lane(chunk: Sequence[Item]) -> None:
        for token, ms in chunk:
            await peer.add(token, ms)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(chunk) for chunk in chunks))
    return time.perf_counter() - t0


async def enqueue_bulk(peer: Peer, items: Sequence[Item], batch: int) -> float:
    """Seconds to queue ``items`` with the library's bulk call, ``batch`` jobs a call."""
    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    if peer.sync:

        def loop() -> float:
            t0 = time.perf_counter()
            for chunk in batches:
                peer.add_bulk_sync(chunk)
            return time.perf_counter() - t0

        return await asyncio.to_thread(loop)
    t0 = time.perf_counter()
    for chunk in batches:
        await peer.add_bulk(chunk)
    return time.perf_counter() - t0


async def fill(peer: Peer, items: Sequence[Item], sizes: Sizes) -> None:
    """Queue ``items`` the fastest way the library has (not timed)."""
    if peer.bulk:
        await enqueue_bulk(peer, items, sizes.batch)
    else:
        await enqueue_lanes(peer, items, sizes.lanes)


async def enqueue_paced(peer: Peer, items: Sequence[Item], rate: float) -> dict[str, float]:
    """Queue ``items`` at ``rate`` jobs/s on a fixed schedule; the monotonic send times."""
    sent: dict[str, float] = {}
    if peer.sync:

        def loop() -> None:
            t0 = time.monotonic()
            for i, (token, ms) in enumerate(items):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent[token] = time.monotonic()
                peer.add_sync(token, ms)

        await asyncio.to_thread(loop)
        return sent
    t0 = time.monotonic()
    for i, (token, ms) in enumerate(items):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[token] = time.monotonic()
        await peer.add(token, ms)
    return sent


# -- the measurements ----------------------------------------------------------------


class Bench:
    def __init__(self, url: str, sizes: Sizes, logs: Path) -> None:
        self.redis = Redis.from_url(url)
        self.sizes = sizes
        self.logs = logs

    async def wipe(self) -> None:
        """Delete every key of the run's database (it was empty when the run began)."""
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            await self.redis.unlink(*batch)

    async def records(self) -> list[tuple[str, float, float]]:
        rows = []
        for raw in await self.redis.lrange(DONE, 0, -1):
            token, start, end = raw.decode().split()
            rows.append((token, float(start), float(end)))
        return rows

    async def wait_done(self, target: int, worker: WorkerProcess) -> None:
        """Until ``target`` records exist; fails when none comes for ``sizes.stall`` s."""
        seen, last_progress = -1, time.monotonic()
        while True:
            count = await self.redis.llen(DONE)
            if count >= target:
                return
            if count != seen:
                seen, last_progress = count, time.monotonic()
            elif time.monotonic() - last_progress > self.sizes.stall:
                raise MeasurementError(f"stalled at {count} of {target} jobs done")
            worker.check()
            await asyncio.sleep(0.05)

    def worker(self, peer: Peer) -> WorkerProcess:
        return WorkerProcess(peer, self.logs / f"{peer.name.lower()}.log")

    async def enqueue(self, peer: Peer, rep: int) -> dict[str, float]:
        """Enqueue rates (jobs/s): one by one, from ``lanes`` tasks, in bulk. No worker."""
        n = self.sizes.enqueue
        figures: dict[str, float] = {}
        await peer.open()
        try:
            items = [(f"a{rep}-{i}", 0) for i in range(n)]
            figures["enq_one"] = n / await enqueue_serial(peer, items)
            items = [(f"b{rep}-{i}", 0) for i in range(n)]
            figures["enq_lanes"] = n / await enqueue_lanes(peer, items, self.sizes.lanes)
            if peer.bulk:
                items = [(f"c{rep}-{i}", 0) for i in range(n)]
                figures["enq_bulk"] = n / await enqueue_bulk(peer, items, self.sizes.batch)
        finally:
            await peer.close()
            await self.wipe()
        return figures

    async def work(self, peer: Peer, rep: int) -> dict[str, float]:
        """Drain a no-op backlog, pickup latency at a steady rate, then I/O jobs."""
        s = self.sizes
        figures: dict[str, float] = {}
        worker = self.worker(peer)
        await peer.open()
        try:
            # Drain: the backlog is queued first, then the worker starts; the rate runs
            # from the first job's start to the last one's end (start-up excluded).
            await fill(peer, [(f"d{rep}-{i}", 0) for i in range(s.drain)], s)
            worker.start()
            await self.wait_done(s.drain, worker)
            rows = await self.records()
            figures["drain"] = s.drain / (max(r[2] for r in rows) - min(r[1] for r in rows))

            # Pickup: the worker idle, jobs offered at ``rate``/s; enqueue call to start.
            items = [(f"p{rep}-{i}", 0) for i in range(s.pickups)]
            sent = await enqueue_paced(peer, items, s.rate)
            await self.wait_done(s.drain + s.pickups, worker)
            rows = await self.records()
            latency = [1000 * (start - sent[t]) for t, start, _ in rows if t in sent]
            figures["pick50"] = pct(latency, 0.5)
            figures["pick99"] = pct(latency, 0.99)

            # I/O jobs: ``io_ms`` sleeps, queued as fast as the library allows while the
            # worker runs; first start to last end.
            items = [(f"i{rep}-{i}", s.io_ms) for i in range(s.io_jobs)]
            tokens = {t for t, _ in items}
            await fill(peer, items, s)
            await self.wait_done(s.drain + s.pickups + s.io_jobs, worker)
            rows = [r for r in await self.records() if r[0] in tokens]
            figures["io"] = s.io_jobs / (max(r[2] for r in rows) - min(r[1] for r in rows))
        finally:
            await worker.stop()
            await peer.close()
            await self.wipe()
        return figures

    async def kill(self, peer: Peer, rep: int) -> dict[str, float]:
        """``kill_jobs`` jobs of ``kill_ms``; SIGKILL ``kill_after`` s after the first job
        started, a fresh worker, then up to ``recovery`` s for every job to be done."""
        s = self.sizes
        items = [(f"k{rep}-{i}", s.kill_ms) for i in range(s.kill_jobs)]
        tokens = [t for t, _ in items]
        first = self.worker(peer)
        second = self.worker(peer)
        await peer.open()
        try:
            await fill(peer, items, s)
            first.start()
            await self.wait_done(1, first)
            started = min(r[1] for r in await self.records())
            await asyncio.sleep(max(0.0, started + s.kill_after - time.monotonic()))
            first.kill()
            killed = time.monotonic()
            second.start()
            all_done_s: float | None = None
            while time.monotonic() - killed < s.recovery:
                done = {r[0] for r in await self.records()}
                if all(t in done for t in tokens):
                    all_done_s = time.monotonic() - killed
                    # A job run again because its completion was lost finishes about
                    # when the last one does: give it that long to show up.
                    await asyncio.sleep(2 + s.kill_ms / 1000)
                    break
                second.check()
                await asyncio.sleep(0.2)
            counts = dict.fromkeys(tokens, 0)
            for token, _, _ in await self.records():
                counts[token] = counts.get(token, 0) + 1
        finally:
            await first.stop()
            await second.stop()
            await peer.close()
            await self.wipe()
        figures = {
            "lost": float(sum(1 for t in tokens if counts[t] == 0)),
            "twice": float(sum(1 for t in tokens if counts[t] > 1)),
        }
        # inf: some job was still not done when the recovery window closed.
        figures["all_done"] = math.inf if all_done_s is None else all_done_s
        return figures
