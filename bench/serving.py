"""What the benchmarks that drive a real ``ils serve`` share: a free port, the server
process on it until the block ends, its log's tail, percentiles.

Scripts run as ``python bench/<name>.py`` (this folder is then on ``sys.path``) and
import it as ``serving``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
#: A path every ``ils serve`` answers (200 while live) without a session.
READY_PATH = "/healthz/live"


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by rank; NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a process's log, headed by its name."""
    if not path.exists():
        return f"({path.name}: no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {path.name} ---\n" + "\n".join(text)


@contextlib.contextmanager
def process(
    command: Sequence[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` from the repository root, its output appended to ``log``, until
    the block ends (SIGTERM, then 60 s, then SIGKILL)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(list(command), cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                print(f"{' '.join(command[:4])} did not stop within 60 s; killed", file=sys.stderr)
                proc.kill()
                proc.wait()


def ils_serve(*options: str) -> list[str]:
    """The command of ``ils serve`` with ``options`` (``--port`` is added by :func:`server`)."""
    return [sys.executable, "-m", "ils", "serve", *options]


@contextlib.asynccontextmanager
async def server(
    command: Sequence[str],
    env: dict[str, str],
    log: Path,
    *,
    ready_path: str = READY_PATH,
    start_timeout_s: float = 120,
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``command`` (a server taking ``--port``) on a free port until the block ends;
    yields its base URL and process once ``ready_path`` answers. If the server exits or
    does not answer within ``start_timeout_s``, the error carries its log's tail."""
    port = free_port()
    with process([*command, "--port", str(port)], env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc, log, ready_path, start_timeout_s)
        yield base, proc


async def wait_ready(
    base: str, proc: subprocess.Popen[bytes], log: Path, ready_path: str, timeout_s: float
) -> None:
    """Poll ``ready_path`` until it answers; fail with the log's tail if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with httpx.AsyncClient(base_url=base) as client:
        while loop.time() < deadline:
            if proc.poll() is not None:
                tail = await asyncio.to_thread(log_tail, log)
                raise RuntimeError(
                    f"the server exited during start-up (code {proc.returncode})\n{tail}"
                )
            try:
                await client.get(ready_path)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    tail = await asyncio.to_thread(log_tail, log)
    raise RuntimeError(f"the server did not start within {timeout_s:.0f} s\n{tail}")
