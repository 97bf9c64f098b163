"""The ``ils`` command: serve, worker, demo, db and jobs. Settings are loaded here, once."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from ils.errors import ILSError, JobNotFoundError
from ils.jobs.model import COUNTED_STATES, JobState

if TYPE_CHECKING:
    from ils.checks import CheckResult
    from ils.jobs.admin import Found
    from ils.jobs.model import JobRecord
    from ils.jobs.system import JobSystem
    from ils.settings import Settings

# Heavy modules (SQLAlchemy, Alembic, the job system, the web app, the workers) are
# imported inside the commands that use them: `ils --help` and a typo answer at once.

T = TypeVar("T")

app = typer.Typer(
    help="ILS: the background job system of an optical-lab platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The app database.", no_args_is_help=True)
jobs_app = typer.Typer(help="Look at and steer jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _load_settings() -> Settings:
    """Load settings once; a bad value ends the command with the variable and the
    reason (``ils check``'s wording), never a pydantic stack trace."""
    from ils.checks import load_settings_checked

    settings, result = load_settings_checked()
    if settings is None:
        _print_error(result.message, result.fix)
        raise typer.Exit(2)
    return settings


def _print_error(message: str, fix: str | None) -> None:
    """``error: ...`` and its fix on stderr, unwrapped so a log keeps the sentence whole."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(Text.assemble(("error: ", "red"), message))
    if fix:
        err.print(Text(f"  fix: {fix}"))


def _refuse_or_warn(results: list[CheckResult]) -> None:
    """What ``ils serve`` / ``ils worker`` do with ``ils check``'s findings at start: a
    fatal problem (database unreachable or not migrated, no secret key, evicting Redis
    when noeviction is required) stops the start with its sentence and fix, since the
    process could only fail later and more obscurely; anything else is logged once as
    a warning and the process runs."""
    from ils.checks import Status

    fatal = [result for result in results if result.fatal]
    if fatal:
        for result in fatal:
            _print_error(f"cannot start: {result.message}", result.fix)
        raise typer.Exit(2)
    logger = logging.getLogger(__name__)
    for result in results:
        if result.status is not Status.OK:
            fix = f" (fix: {result.fix})" if result.fix else ""
            logger.warning("%s: %s%s", result.name, result.message, fix)


def _run(make: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Load settings once, run ``make`` and turn our errors into a clean exit."""
    settings = _load_settings()
    _setup_logging(settings)
    try:
        return asyncio.run(make(settings))
    except ILSError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Queue keys to work, comma-separated (all when empty).")
    ] = "",
    handlers: Annotated[
        list[str] | None, typer.Option(help="Extra handler registrars, package.module:function.")
    ] = None,
) -> None:
    """Run workers for some or all queues until SIGTERM (running jobs get a grace period)."""

    async def main(settings: Settings) -> None:
        # Concurrent with short timeouts: a healthy start pays the slowest check, a
        # database round trip.
        from ils.checks import start_up_checks
        from ils.heap import tune_garbage_collector
        from ils.jobs.system import JobSystem
        from ils.jobs.worker_process import (
            build_registry,
            install_signal_handlers,
            load_registrar,
            run_workers,
        )

        _refuse_or_warn(await start_up_checks(settings, "worker"))
        system = await JobSystem.open(settings)
        try:
            # Imported here, not at the top: the handlers pull in numpy and statsmodels
            # (seconds), which `ils check`, `ils db` and `ils jobs` never need.
            from ils.workers import register_all

            registrars = [register_all, *(load_registrar(spec) for spec in handlers or [])]
            registry = build_registry(system, registrars)
            tune_garbage_collector()
            stop = asyncio.Event()
            install_signal_handlers(stop)
            await run_workers(system, _split(queues), registry, stop=stop)
        finally:
            await system.close()

    _run(main)


def _drop_query_string(record: logging.LogRecord) -> bool:
    """Keep query strings (search terms, names) out of uvicorn's access log."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
        record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
    return True


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (ILS_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on (ILS_PORT, 8000).")
    ] = None,
    no_workers: Annotated[
        bool,
        typer.Option("--no-workers", help="Do not run workers in this process (run `ils worker`)."),
    ] = False,
) -> None:
    """Serve the web app and API with uvicorn; workers run in-process unless told not to."""
    settings = _served_at(_load_settings(), host, port)
    _setup_logging(settings)
    _serve(settings, host, port, start_workers=settings.start_workers and not no_workers)


def _serve(settings: Settings, host: str | None, port: int | None, *, start_workers: bool) -> None:
    """Run uvicorn with our app until SIGTERM / Ctrl-C (shared by serve and demo)."""
    # The checks run after the web modules have imported, never beside them: a check
    # thread importing redis while this thread imported the app deadlocked Python's
    # import locks (one start in about twenty). Once the app's modules are loaded the
    # checks take tens of milliseconds.
    import uvicorn

    from ils.checks import start_up_checks
    from ils.heap import tune_garbage_collector
    from ils.web.app import create_app

    _refuse_or_warn(asyncio.run(start_up_checks(settings, "serve")))
    logging.getLogger("uvicorn.access").addFilter(_drop_query_string)
    config = uvicorn.Config(
        create_app(settings, start_workers=start_workers, on_started=tune_garbage_collector),
        host=host or settings.host,
        port=port or settings.port,
        lifespan="on",
        # Our logging setup (above) formats uvicorn's records too.
        log_config=None,
        log_level=settings.log_level.lower(),
        server_header=False,
        timeout_keep_alive=settings.limits.keep_alive_s,
        # Not uvicorn's "auto" (uvloop when installed): see LimitSettings.event_loop.
        loop=settings.limits.event_loop,
        # X-Forwarded-For is believed from the configured proxies only: uvicorn's own
        # default trusts it from 127.0.0.1, so any local client could name its address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies.split(",") if settings.trusted_proxies else [],
    )
    server = uvicorn.Server(config)
    # The start-up banner (ils.jobs.banner) is logged by the app once it runs; uvicorn
    # names the address it listens on.
    server.run()
    if not server.started:
        # The lifespan failed (database not migrated, Redis policy refused...); uvicorn
        # has logged why.
        raise typer.Exit(2)


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port to listen on.")] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Build the network and print sign-ins, then stop.")
    ] = False,
) -> None:
    """Build the demo network (once), print how to sign in, and start the server."""
    console = Console()
    # Said before the platform's modules load (about a second), so the first start is
    # never silent.
    console.print("Starting the ILS demo...")
    from datetime import date

    from ils.demo.setup import prepare_demo

    async def build(settings: Settings) -> Settings:
        settings = _served_at(settings, host, port)
        await prepare_demo(settings, console, today=date.today(), base_url=settings.public_url)
        return settings

    settings = _run(build)
    if not no_serve:
        _serve(settings, host, port, start_workers=settings.start_workers)


def _served_at(settings: Settings, host: str | None, port: int | None) -> Settings:
    """Settings whose public URL is the address this process serves on, unless
    ``ILS_PUBLIC_URL`` says otherwise: links in e-mails must reach this server."""
    if "public_url" in settings.model_fields_set:
        return settings
    address = host or settings.host
    try:
        everywhere = ipaddress.ip_address(address).is_unspecified
    except ValueError:  # a host name
        everywhere = False
    shown = "127.0.0.1" if everywhere else address
    return settings.model_copy(update={"public_url": f"http://{shown}:{port or settings.port}"})


@app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=300, help="Seconds each check may take.")
    ] = 5.0,
) -> None:
    """Check the settings and everything they point at; exit 1 on any problem.

    Database (reachable, migrated), Redis (version, eviction policy, persistence),
    storage (a probe object written, read and deleted), SMTP (greeting and EHLO, no
    mail), the secret key, time zone data and the public URL. Warnings alone exit 0.
    """
    from ils.checks import check_deployment, exit_code, render, results_json

    logging.getLogger("alembic").setLevel(logging.WARNING)
    results = asyncio.run(check_deployment(timeout_s=timeout))
    if as_json:
        typer.echo(results_json(results))
    else:
        render(results, Console(highlight=False, soft_wrap=True))
    raise typer.Exit(exit_code(results))


@jobs_app.command("demo")
def jobs_demo(
    rounds: Annotated[int, typer.Option(min=1, max=50, help="How many of each job type.")] = 1,
) -> None:
    """Queue every job type through the helpers and run them (no web, no demo data)."""
    from ils.demo.jobs_demo import run_demo

    _run(lambda settings: run_demo(settings, rounds, Console()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the app database to the newest revision."""
    from ils.db.migrations import current_revision, upgrade_database

    async def main(settings: Settings) -> None:
        await upgrade_database(settings.effective_database_url)
        revision = await current_revision(settings.effective_database_url)
        Console().print(f"database at revision {revision}")

    _run(main)


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    from ils.db.migrations import current_revision, head_revision

    async def main(settings: Settings) -> None:
        current = await current_revision(settings.effective_database_url)
        Console().print(f"current: {current or 'none'}, newest: {head_revision()}")

    _run(main)


def _with_system(action: Callable[[JobSystem], Coroutine[Any, Any, T]]) -> T:
    from ils.jobs.system import JobSystem

    async def main(settings: Settings) -> T:
        system = await JobSystem.open(settings)
        try:
            return await action(system)
        finally:
            await system.close()

    return _run(main)


@app.command("unlock-sign-in")
def unlock_sign_in(email: str) -> None:
    """Lift an account's sign-in lock and forget its failed attempts (audited)."""
    from ils.domain.sign_in_throttle import unlock_account

    async def action(system: JobSystem) -> bool:
        return await unlock_account(system.engine, email, system.clock.now_ms())

    done = _with_system(action)
    Console().print(f"{email}: {'unlocked' if done else 'nothing to unlock'}")


@jobs_app.command("stats")
def jobs_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of every queue by state (get_queue_stats)."""
    stats: dict[str, Any] = _with_system(lambda system: system.monitor.stats())
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    table = Table(title=f"ILS queues ({stats['mode']} mode, redis in use: {stats['redis']})")
    table.add_column("queue")
    for state in COUNTED_STATES:
        table.add_column(state.value, justify="right")
    for key, counts in stats.items():
        if isinstance(counts, dict):
            table.add_row(key, *(str(counts[s.value]) for s in COUNTED_STATES))
    Console().print(table)


@jobs_app.command("health")
def jobs_health() -> None:
    """Overall status (ok, degraded, down), the stores and each queue's oldest job, as JSON."""
    health: dict[str, Any] = _with_system(lambda system: system.monitor.health())
    typer.echo(json.dumps(health, indent=2))
    if health["status"] != "ok":
        raise typer.Exit(1)


def _utc_text(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 in UTC (``2026-11-28T14:03:05.120Z``), for JSON."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _human_time(ms: int | None, now_ms: int) -> str:
    """``2026-11-28 14:03 UTC (3 min ago)``: when, in the one zone every reader shares
    (a terminal's zone is often the server's, not the reader's), and how long ago."""
    if ms is None:
        return "—"
    moment = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        ago = "just now"
    elif seconds < 5400:
        ago = f"{round(seconds / 60)} min ago"
    elif seconds < 129_600:
        ago = f"{round(seconds / 3600)} h ago"
    else:
        ago = f"{round(seconds / 86_400)} days ago"
    return f"{moment} ({ago})"


def _job_json(record: JobRecord) -> dict[str, Any]:
    """A listed job for scripts: times as ISO 8601 UTC, never epoch numbers to decode."""
    return {
        "id": record.id,
        "queue": record.queue,
        "name": record.name,
        "state": record.state.value,
        "store": record.store,
        "company_id": record.company_id,
        "attempts_made": record.attempts_made,
        "attempts": record.attempts,
        "created_at": _utc_text(record.created_at_ms),
        "processed_at": _utc_text(record.processed_at_ms),
        "finished_at": _utc_text(record.finished_at_ms),
        "failed_reason": record.failed_reason,
    }


@jobs_app.command("list")
def jobs_list(
    queue: str,
    state: Annotated[JobState, typer.Option(help="State to list.")] = JobState.FAILED,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (times as ISO 8601 in UTC).")
    ] = False,
) -> None:
    """List a queue's jobs in one state, newest first, over both stores."""

    async def action(system: JobSystem) -> tuple[Found, int]:
        return await system.admin.list_jobs(queue, state, limit=limit), system.clock.now_ms()

    found, now_ms = _with_system(action)
    if as_json:
        body = {
            "queue": queue,
            "state": state.value,
            "total": found.total,
            "jobs": [_job_json(record) for record in found.jobs],
        }
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{queue}: {state.value} ({found.total} in all)")
    for column in ("store", "id", "name", "attempts", "created", "finished", "reason"):
        table.add_column(column, overflow="fold")
    for record in found.jobs:
        table.add_row(
            record.store,
            record.id,
            record.name,
            f"{record.attempts_made}/{record.attempts}",
            _human_time(record.created_at_ms, now_ms),
            _human_time(record.finished_at_ms, now_ms),
            record.failed_reason or "",
        )
    Console().print(table)


@jobs_app.command("retry")
def jobs_retry(
    queue: str,
    job_id: Annotated[
        str | None, typer.Argument(help="Job to retry; all failed when omitted.")
    ] = None,
) -> None:
    """Retry one failed job, or every failed job of a queue."""

    async def action(system: JobSystem) -> str:
        if job_id is None:
            total = await system.admin.retry_failed(queue)
            return f"{total} failed job(s) sent back to waiting"
        try:
            await system.admin.retry(queue, job_id)
        except JobNotFoundError:
            raise typer.BadParameter(f"no job {job_id!r} in queue {queue!r}") from None
        return f"job {job_id} sent back to waiting"

    Console().print(_with_system(action))


@jobs_app.command("pause")
def jobs_pause(queue: str) -> None:
    """Pause a queue (running jobs finish; no new ones start)."""
    _with_system(lambda system: system.admin.pause(queue))
    Console().print(f"queue {queue} paused")


@jobs_app.command("resume")
def jobs_resume(queue: str) -> None:
    """Resume a paused queue."""
    _with_system(lambda system: system.admin.resume(queue))
    Console().print(f"queue {queue} resumed")


def main() -> None:
    """Console-script entry point."""
    app()
