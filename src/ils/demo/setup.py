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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import create_engine, session_factory
from ils.demo.network import BUILD_STEPS, DemoAccount, build_network, demo_password, network_exists
from ils.domain.companies import Company, Role
from ils.jobs.system import ensure_schema
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


async def prepare_demo(
    settings: Settings, console: Console, *, today: date, base_url: str | None = None
) -> None:
    """Migrate, build the network unless it exists, and print where to go and the
    sign-ins grouped by company kind (``base_url``: where the server will answer)."""
    console.print("Preparing the demo: checking the database (first start: migrating it)...")
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
        kinds = await _company_kinds(sessions)
        console.print(
            _sign_in_table(accounts, password, kinds), markup=False, highlight=False, soft_wrap=True
        )
        if base_url is not None:
            console.print(_where_to_go(base_url), markup=False, highlight=False, soft_wrap=True)
    finally:
        await engine.dispose()


async def _company_kinds(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Each demo company's kind by name (practice, lab, supplier)."""
    async with sessions() as session:
        rows = await session.execute(select(Company.name, Company.kind))
        return {name: kind.value for name, kind in rows.all()}


#: The order the sign-ins are printed in: who orders, who makes, who supplies.
KIND_ORDER = ("practice", "lab", "supplier")


def _sign_in_table(accounts: list[DemoAccount], password: str, kinds: dict[str, str]) -> str:
    """The sign-ins grouped by company kind (practice, lab, supplier), then company:
    plain lines, so a narrow terminal or a log file never cuts an e-mail address."""

    def rank(account: DemoAccount) -> tuple[int, str, str]:
        kind = kinds.get(account.company, "")
        order = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return order, account.company, account.role.value

    lines = [f"Demo sign-ins (password for all: {password})"]
    company = None
    for account in sorted(accounts, key=rank):
        if account.company != company:
            company = account.company
            lines.append(f"  {kinds.get(company, 'platform')}: {company}")
        lines.append(f"    {account.role.value:<15} {account.email}")
    return "\n".join(lines)


def _where_to_go(base_url: str) -> str:
    """The addresses to open once the server is up."""
    return (
        f"\nOpen {base_url}/ (what this is), {base_url}/admin/queues (the dashboard: sign "
        f"in as an admin or the platform admin) and {base_url}/docs (the API).\n"
        "Links in the demo's e-mails point at the same address."
    )
