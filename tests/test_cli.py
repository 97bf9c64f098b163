"""The README's main job, ``ils demo``, on a fresh embedded default; and the CLI's errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ils(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env["ILS_DATA_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [sys.executable, "-m", "ils", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_runs_every_job_type_on_the_embedded_default(tmp_path: Path) -> None:
    result = ils(tmp_path, "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "local mode" in result.stdout
    assert (tmp_path / "var" / "ils.db").exists()
    stats = ils(tmp_path, "jobs", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    import json

    counts = json.loads(stats.stdout)
    assert counts["mode"] == "local"
    completed = sum(counts[q]["completed"] for q in ("email", "pdf", "notification", "ai", "oma"))
    assert completed == 22  # 21 job types in jobs.md + the committed transactional one
    assert all(counts[q]["failed"] == 0 for q in ("email", "pdf", "notification", "ai", "oma"))


def test_unknown_queue_is_a_clean_error(tmp_path: Path) -> None:
    result = ils(tmp_path, "jobs", "list", "sms")
    assert result.returncode == 2
    assert "unknown queue 'sms'" in result.stderr
    assert "Traceback" not in result.stderr
