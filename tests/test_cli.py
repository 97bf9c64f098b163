"""The README's main job, ``ils demo``, on a fresh embedded default; ``ils jobs demo``;
and the CLI's errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env["ILS_DATA_DIR"] = str(tmp_path / "var")
    return env


def ils(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ils", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_builds_the_network_serves_it_and_a_practice_can_order(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ils", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/api/auth/me", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "ils demo exited"
                time.sleep(0.2)
        password = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())["password"]
        with httpx.Client(base_url=base, timeout=10) as client:
            signed = client.post(
                "/api/auth/sign-in",
                json={"email": "staff@brightside.example", "password": password},
            )
            assert signed.status_code == 200, signed.text
            orders = client.get("/api/orders", params={"limit": 5})
            assert orders.status_code == 200
            assert orders.json()["total"] > 100
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert password in output  # the sign-in table was printed
    assert "admin@clearview-lab.example" in output


def test_jobs_demo_runs_every_job_type(tmp_path: Path) -> None:
    result = ils(tmp_path, "jobs", "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "local mode" in result.stdout
    stats = ils(tmp_path, "jobs", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["mode"] == "local"
    queues = ("email", "pdf", "notification", "ai", "oma", "scheduled")
    # 23 job types + 1 in a transaction + what jobs queue: the daily briefing's e-mail
    # and notification, the tracing's lab work ticket and its uploader's notification,
    # the sample schedule's briefing (with its e-mail and notification).
    assert sum(counts[q]["completed"] for q in queues) == 31
    assert all(counts[q]["failed"] == 0 for q in queues)


def test_unknown_queue_is_a_clean_error(tmp_path: Path) -> None:
    result = ils(tmp_path, "jobs", "list", "sms")
    assert result.returncode == 2
    assert "unknown queue 'sms'" in result.stderr
    assert "Traceback" not in result.stderr
