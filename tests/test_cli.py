"""The README's main job, ``ils demo``, on a fresh embedded default; ``ils jobs demo``;
and the CLI's errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest

from ils.jobs.model import JobOptions
from ils.jobs.system import JobSystem
from ils.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env["ILS_DATA_DIR"] = str(tmp_path / "var")
    return env


def ils(
    tmp_path: Path, *args: str, columns: int = 80, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ils *args`` in ``tmp_path``'s data directory, ``env`` added to its
    environment."""
    return subprocess.run(
        [sys.executable, "-m", "ils", *args],
        cwd=tmp_path,
        env={**_env(tmp_path), "COLUMNS": str(columns), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes], port: int
) -> socket.socket:
    """A connection to ``proc``'s port once it listens (uvicorn listens only after the
    app's start-up); fails if the process exits or does not listen within 120 s."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not listen"
            time.sleep(0.2)


@contextlib.contextmanager
def serving(
    tmp_path: Path, env: dict[str, str], stdout: int | IO[bytes]
) -> Iterator[socket.socket]:
    """``ils serve`` without workers on a free port, ``env`` added to its environment and
    its output to ``stdout``: a connection to it once it listens, then SIGTERM and its
    exit."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ils", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**_env(tmp_path), "ILS_START_WORKERS": "false", **env},
        stdout=stdout,
        stderr=subprocess.STDOUT,
    )
    try:
        with wait_until_listening(proc, port) as sock:
            yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


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
        wait_until_listening(proc, port).close()
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
    # Where to go, on the port it serves on; sign-ins grouped practice, lab, supplier.
    assert f"{base}/admin/queues" in output and f"{base}/docs" in output
    kinds = re.findall(r"^  (practice|lab|supplier): ", output, re.MULTILINE)
    assert kinds and kinds == sorted(kinds, key=("practice", "lab", "supplier").index)


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


def _queue_order_sheets(tmp_path: Path, count: int) -> list[str]:
    """Jobs waiting in the embedded default of ``tmp_path`` (no worker runs them)."""

    async def enqueue() -> list[str]:
        system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path / "var"))
        try:
            model = system.job_types.get("pdf", "order-sheet").model
            ids = []
            for n in range(count):
                payload = model.model_validate({"order_id": f"order-{n}"})
                ref = await system.producer.enqueue("pdf", "order-sheet", payload, JobOptions())
                ids.append(ref.job_id)
            return ids
        finally:
            await system.close()

    return asyncio.run(enqueue())


def test_jobs_list_prints_human_times_and_json(tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = _queue_order_sheets(tmp_path, 2)
    result = ils(tmp_path, "jobs", "list", "pdf", "--state", "waiting", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads(result.stdout)
    assert listed["queue"] == "pdf" and listed["state"] == "waiting" and listed["total"] == 2
    assert {job["id"] for job in listed["jobs"]} == set(ids)
    for job in listed["jobs"]:
        assert job["name"] == "order-sheet" and job["store"] == "local"
        assert job["attempts_made"] == 0 and job["finished_at"] is None
        # ISO 8601 in UTC, not epoch milliseconds.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", job["created_at"])
        created = datetime.fromisoformat(job["created_at"])
        assert before <= created <= datetime.now(UTC)

    table = ils(tmp_path, "jobs", "list", "pdf", "--state", "waiting", columns=200)
    assert table.returncode == 0, table.stderr[-3000:]
    assert re.search(rf"{created:%Y-%m-%d %H:%M} UTC \((just now|\d+ min ago)\)", table.stdout)
    assert "2 in all" in table.stdout
    assert not re.search(r"\b1\d{12}\b", table.stdout)  # no epoch milliseconds


def test_help_imports_no_heavy_module_and_answers_at_once() -> None:
    """``ils --help`` (and a typo) must not pay for the job system, the web app or the
    AI and PDF workers: it used to import statsmodels and reportlab and took seconds."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ils.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'worker' in result.output\n"
        "heavy = ('statsmodels', 'reportlab', 'numpy', 'sqlalchemy', 'alembic', 'fastapi')\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "", f"ils --help imported: {found.stdout.strip()}"


def test_links_point_at_the_address_served_unless_a_public_url_is_set() -> None:
    """Reported: e-mail links pointed at port 8000 while the server ran on another."""
    from ils.cli import _served_at

    served = _served_at(Settings(_env_file=None), None, 8123)
    assert served.public_url == "http://127.0.0.1:8123"
    everywhere = _served_at(Settings(_env_file=None), "0.0.0.0", 9000)  # noqa: S104
    assert everywhere.public_url == "http://127.0.0.1:9000"
    configured = Settings(_env_file=None, public_url="https://lab.example")
    assert _served_at(configured, None, 8123).public_url == "https://lab.example"


#: Runs ``ils serve`` in-process and prints every module a second thread imported.
_SERVE_WATCHING_IMPORTS = """
import sys, threading
seen = set()
def record(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        seen.add(args[0])
sys.addaudithook(record)
sys.argv = ["ils", "serve", "--port", "1"]
from ils.cli import main
try:
    main()
except SystemExit:
    pass
finally:
    print("imported-off-main:", sorted(seen))
"""


def test_serve_imports_nothing_on_a_second_thread_while_it_starts(tmp_path: Path) -> None:
    """Two threads importing redis at once deadlock Python's import locks (CI saw
    ``_DeadlockError: redis.asyncio.retry`` in about one ``ils serve`` in twenty when
    the start-up checks ran in a thread beside the app's imports). The start must do
    its imports on one thread; here it stops at the checks for want of a secret key."""
    env = {k: v for k, v in _env(tmp_path).items() if not k.startswith("REDIS_")}
    env["ILS_REDIS_URL"] = "redis://127.0.0.1:1/0"
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_WATCHING_IMPORTS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "ILS_SECRET_KEY" in done.stderr + done.stdout, done.stderr[-2000:]
    assert "imported-off-main: []" in done.stdout, done.stdout[-2000:]


def test_serve_keeps_an_idle_connection_as_long_as_the_setting_says(tmp_path: Path) -> None:
    """``ILS_LIMITS__KEEP_ALIVE_S`` reaches uvicorn: with 2 s the server closes an
    idle kept-alive connection after about 2 s, where uvicorn's own default is 5 s
    (which made most requests of a user reading between clicks reconnect)."""
    with serving(tmp_path, {"ILS_LIMITS__KEEP_ALIVE_S": "2"}, subprocess.DEVNULL) as sock:
        sock.settimeout(30)
        sock.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: ils\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        answered = time.monotonic()
        # The server's close is the wait's end: recv returns b"" then.
        while sock.recv(65536):
            pass
        idle = time.monotonic() - answered
    assert 1.5 <= idle < 4.5


@pytest.mark.parametrize(("setting", "loop"), [(None, "asyncio"), ("uvloop", "uvloop")])
def test_serve_runs_on_the_event_loop_the_setting_names(
    tmp_path: Path, setting: str | None, loop: str
) -> None:
    """``ils serve`` runs on the standard library's loop unless ``ILS_LIMITS__EVENT_LOOP``
    says uvloop, which uvicorn would otherwise pick by itself: with 1,000 users uvloop
    starved the in-process workers (bench/users.py). The banner names the loop the
    process really runs on."""
    env = {} if setting is None else {"ILS_LIMITS__EVENT_LOOP": setting}
    log = tmp_path / "serve.log"
    with log.open("wb") as out, serving(tmp_path, env, out):
        pass
    text = log.read_text()
    assert re.search(rf"^\s*event loop: {loop}\s*$", text, re.MULTILINE), text[-2000:]


def test_an_unknown_event_loop_is_refused_by_name(tmp_path: Path) -> None:
    """A loop ILS does not offer stops ``ils serve`` with the setting's name, not a
    traceback."""
    done = ils(
        tmp_path, "serve", "--port", str(free_port()), env={"ILS_LIMITS__EVENT_LOOP": "trio"}
    )
    assert done.returncode != 0
    assert "ILS_LIMITS__EVENT_LOOP" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
