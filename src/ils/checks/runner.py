"""Running the checks: concurrently, each under a timeout, secrets blanked out; and
printing them (lines with a mark, or JSON)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.text import Text

from ils.checks.config import (
    check_public_url,
    check_secret_key,
    check_time_zones,
    load_settings_checked,
)
from ils.checks.result import CheckResult, Status, describe_error, problem
from ils.checks.services import check_database, check_redis, check_smtp, check_storage
from ils.settings import Settings

#: Seconds each check may take in ``ils check`` (``--timeout`` changes it).
DEFAULT_TIMEOUT_S = 5.0
#: Seconds each check may take when ``ils serve`` / ``ils worker`` start. In a healthy
#: deployment every check answers in milliseconds; this bounds a broken one.
START_TIMEOUT_S = 3.0
#: What a process is starting as: the web server signs sessions, a worker does not.
Role = Literal["serve", "worker"]


# -- running the checks ----------------------------------------------------------------

CheckFn = Callable[[Settings, float], Awaitable[list[CheckResult]]]


@dataclass(frozen=True, slots=True)
class Check:
    """One check of the list: its name, its coroutine, and what its timeout means.

    ``fatal_on_timeout``: a database that does not answer in time cannot be run on; a
    slow Redis or mail server is only reported.
    """

    name: str
    run: CheckFn
    fatal_on_timeout: bool = False


CHECKS: tuple[Check, ...] = (
    Check("database", check_database, fatal_on_timeout=True),
    Check("redis", check_redis),
    Check("storage", check_storage),
    Check("smtp", check_smtp),
    Check("secret_key", check_secret_key),
    Check("time_zones", check_time_zones),
    Check("public_url", check_public_url),
)


def secret_values(settings: Settings) -> set[str]:
    """Every secret the settings hold, to blank out of any sentence we print."""
    found: set[str] = set()

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                found.add(value.get_secret_value())
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)
    found.add(settings.secret_key)
    found.update(part.strip() for part in settings.secret_key_previous.split(","))
    for url in (settings.database_url, settings.redis_url or ""):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    return {value for value in found if len(value) >= 4}


def scrub(result: CheckResult, hidden: Iterable[str]) -> CheckResult:
    """``result`` with every secret value in its sentence and fix replaced by ``***``."""
    message, fix = result.message, result.fix
    for value in hidden:
        message = message.replace(value, "***")
        fix = fix.replace(value, "***") if fix is not None else None
    return replace(result, message=message, fix=fix)


async def _run_one(check: Check, settings: Settings, timeout_s: float) -> list[CheckResult]:
    """Run one check under its timeout; a timeout or a bug becomes a problem result."""
    started = time.perf_counter()
    try:
        # A little longer than the clients' own timeouts, so theirs (with a better
        # message) fire first; this one catches what has none (a driver's connect).
        async with asyncio.timeout(timeout_s + 0.5):
            results = await check.run(settings, timeout_s)
    except TimeoutError:
        results = [
            problem(
                check.name,
                f"no answer within {timeout_s:g} s (a server that drops packets, or a firewall)",
                "make sure the server runs and this machine may reach it",
                fatal=check.fatal_on_timeout,
            )
        ]
    except Exception as exc:  # a check must never end the command with a traceback
        results = [
            problem(
                check.name,
                f"the check itself failed: {describe_error(exc)}",
                "run `ils check` again; report it if it persists",
            )
        ]
    elapsed_ms = (time.perf_counter() - started) * 1000
    return [replace(result, duration_ms=elapsed_ms) for result in results]


async def run_checks(
    settings: Settings,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    checks: Sequence[Check] = CHECKS,
) -> list[CheckResult]:
    """Run ``checks`` concurrently, each bounded by ``timeout_s``; results in list order."""
    # The database check needs SQLAlchemy and Alembic, about half a second of imports
    # (seconds on a loaded machine). Loaded before the clocks start, so a check's
    # timeout measures the server's silence, not our imports: otherwise the catch-all
    # timeout below fired before the driver's own, with the vaguer message.
    import ils.db.migrations  # noqa: F401

    groups = await asyncio.gather(*(_run_one(check, settings, timeout_s) for check in checks))
    # Last line of defence: a driver's message could quote a URL or a password.
    hidden = secret_values(settings)
    return [scrub(result, hidden) for group in groups for result in group]


async def check_deployment(*, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """``ils check``: the settings first (nothing else can run without them), then all."""
    settings, loaded = load_settings_checked()
    if settings is None:
        return [loaded]
    return [loaded, *await run_checks(settings, timeout_s=timeout_s)]


def start_up_checks_for(role: Role) -> tuple[Check, ...]:
    """The checks a starting process runs: all of them, but a worker signs no sessions,
    so the secret key is the web server's concern."""
    if role == "worker":
        return tuple(check for check in CHECKS if check.name != "secret_key")
    return CHECKS


async def start_up_checks(
    settings: Settings, role: Role, *, timeout_s: float = START_TIMEOUT_S
) -> list[CheckResult]:
    """The checks ``ils serve`` / ``ils worker`` run before they start anything."""
    return await run_checks(settings, timeout_s=timeout_s, checks=start_up_checks_for(role))


# -- output ----------------------------------------------------------------------------

_MARKS = {
    Status.OK: ("✓", "green"),
    Status.WARNING: ("!", "yellow"),
    Status.PROBLEM: ("✗", "red"),
}


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when nothing is a problem (warnings included), else 1."""
    return 1 if any(result.status is Status.PROBLEM for result in results) else 0


def summary(results: Sequence[CheckResult]) -> str:
    """``2 problems, 1 warning`` / ``all checks passed``."""
    problems = sum(result.status is Status.PROBLEM for result in results)
    warnings = sum(result.status is Status.WARNING for result in results)
    if not problems and not warnings:
        return "all checks passed"
    parts = []
    if problems:
        parts.append(f"{problems} problem{'s' if problems != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)


def render(results: Sequence[CheckResult], console: Console) -> None:
    """One line per result with a mark, and the fix under any that is not ok.

    Plain lines rather than a table: a sentence is never cut or wrapped mid-word in
    a narrow terminal or a log file, and ``grep`` finds it.
    """
    width = max((len(result.name) for result in results), default=0)
    for result in results:
        mark, style = _MARKS[result.status]
        line = Text()
        line.append(f"{mark} ", style=f"bold {style}")
        line.append(result.name.ljust(width), style="bold")
        line.append(f"  {result.message}")
        console.print(line)
        if result.fix and result.status is not Status.OK:
            console.print(Text(f"  {' ' * width}  fix: {result.fix}", style=style))
    console.print(Text(summary(results), style="bold red" if exit_code(results) else "bold green"))


def results_json(results: Sequence[CheckResult]) -> str:
    """``ils check --json``: the verdict and every result."""
    return json.dumps(
        {
            "ok": exit_code(results) == 0,
            "problems": sum(result.status is Status.PROBLEM for result in results),
            "warnings": sum(result.status is Status.WARNING for result in results),
            "checks": [result.as_json() for result in results],
        },
        indent=2,
    )
