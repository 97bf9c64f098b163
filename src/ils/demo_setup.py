"""``ils demo``: build the demo network once, print how to sign in, then serve.

The password of the demo accounts is made on the first build and kept (mode 0600)
beside the embedded database, so a second ``ils demo`` reuses the network and prints
the same sign-in details.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ils.database import create_engine, session_factory
from ils.demo_network import BUILD_STEPS, DemoAccount, build_network, demo_password, network_exists
from ils.domain.companies import Role
from ils.queue.system import ensure_schema
from ils.settings import Settings
from ils.web.security import Passwords

CREDENTIALS_FILE = "demo-credentials.json"


def _credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE


def _save(path: Path, password: str, accounts: list[DemoAccount]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "password": password,
        "accounts": [
            {"email": a.email, "role": a.role.value, "company": a.company} for a in accounts
        ],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=2)


def _load(path: Path) -> tuple[str, list[DemoAccount]] | None:
    try:
        body = json.loads(path.read_text())
        accounts = [
            DemoAccount(a["email"], Role(a["role"]), a["company"]) for a in body["accounts"]
        ]
        return str(body["password"]), accounts
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def prepare_demo(settings: Settings, console: Console, *, today: date) -> None:
    """Migrate, build the network unless it exists, and print the sign-in table."""
    await ensure_schema(settings)
    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    path = _credentials_path(settings)
    try:
        saved = _load(path)
        if await network_exists(sessions) and saved is not None:
            password, accounts = saved
            console.print(f"Demo network already built in {settings.effective_database_url}")
        elif await network_exists(sessions):
            console.print(
                "[yellow]The demo network exists but its sign-in details are lost "
                f"({path}); start from an empty data directory to rebuild.[/yellow]"
            )
            return
        else:
            password = demo_password()
            password_hash = await Passwords().hash(password)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("building the demo network", total=len(BUILD_STEPS))

                def step(name: str) -> None:
                    progress.update(task, advance=1, description=f"built {name}")

                accounts = await build_network(
                    sessions, today=today, password_hash=password_hash, step=step
                )
            _save(path, password, accounts)
        console.print(_sign_in_table(accounts, password))
    finally:
        await engine.dispose()


def _sign_in_table(accounts: list[DemoAccount], password: str) -> Table:
    table = Table(title=f"Demo sign-ins (password for all: {password})")
    for column in ("e-mail", "role", "company"):
        table.add_column(column)
    for account in accounts:
        table.add_row(account.email, account.role.value, account.company)
    return table
