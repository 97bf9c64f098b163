"""Waiting for an ``ils serve`` a test started as a process of its own."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from ils.testing import eventually


async def until_serving(
    base: str,
    process: subprocess.Popen[bytes],
    logs: Callable[[], str],
    *,
    path: str = "/docs",
    timeout_s: float = 30.0,
) -> None:
    """Wait until ``base + path`` answers 200; fail at once, with ``logs()``, if the
    process ends first, and with them after ``timeout_s`` if it never answers."""
    async with httpx.AsyncClient(base_url=base, timeout=5) as probe:

        async def serving() -> bool:
            try:
                if (await probe.get(path)).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            assert process.poll() is None, f"the server ended before serving:\n{logs()}"
            return False

        await eventually(
            serving,
            timeout_s,
            interval=0.1,
            message=lambda: f"{base} did not serve {path} in {timeout_s} s:\n{logs()}",
        )
