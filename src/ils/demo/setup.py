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


#: What the progress line says while each build step of the network runs.
FIRST_STEPS = ("checking the database (first start: migrating it)", "making the demo password")


def describe_after(done: str) -> str:
    """The progress line once the build step ``done`` has finished: the step that runs
    now (a line naming the finished step lagged the work by a whole step)."""
    position = BUILD_STEPS.index(done) + 1
    return f"building {BUILD_STEPS[position]}" if position < len(BUILD_STEPS) else "built"


async def prepare_demo(
    settings: Settings, console: Console, *, today: date, base_url: str | None = None
) -> None:
    """Migrate, build the network unless it exists, and print where to go and the
    sign-ins grouped by company kind (``base_url``: where the server will answer).

    One progress line runs from the first step to the last, and always names the step
    that is running, so a first start never sits silent while it migrates or builds."""
    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    path = _credentials_path(settings)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(FIRST_STEPS[0], total=len(FIRST_STEPS) + len(BUILD_STEPS))
            await ensure_schema(settings)
            progress.update(task, advance=1, description="looking for the demo network")
            saved = _load(path)
            exists = await network_exists(sessions)
            if exists:
                progress.update(task, completed=progress.tasks[0].total, description="found")
            else:
                progress.update(task, description=FIRST_STEPS[1])
                password = demo_password()
                password_hash = await Passwords().hash(password)
                progress.update(task, advance=1, description=f"building {BUILD_STEPS[0]}")

                def step(name: str) -> None:
                    progress.update(task, advance=1, description=describe_after(name))

                accounts = await build_network(
                    sessions, today=today, password_hash=password_hash, step=step
                )
                _save(path, password, accounts)
        if exists and saved is None:
            console.print(
                "[yellow]The demo network exists but its sign-in details are lost "
                f"({path}); start from an empty data directory to rebuild.[/yellow]"
            )
            return
        if exists and saved is not None:
            password, accounts = saved
            console.print(f"Demo network already built in {settings.effective_database_url}")
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
