"""The code stays ruff- and mypy --strict-clean (CI runs this with the tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff() -> None:
    result = run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout[-5000:]


def test_mypy_strict() -> None:
    result = run("mypy", "--strict", "src")
    assert result.returncode == 0, result.stdout[-5000:]
