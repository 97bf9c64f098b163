"""The web app factory: one composition root for ``ils serve`` and the tests.

``create_app`` builds nothing at import time and keeps no module globals: the lifespan
opens the job system from the settings it was given, keeps what requests need in one
:class:`~ils.web.state.WebState` on ``app.state.ils``, and closes it all on shutdown.
The workers run in-process through the same ``run_workers`` as ``ils worker``, so the
two ways of running them cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

from argon2 import PasswordHasher
from fastapi import FastAPI

from ils import __version__
from ils.clock import Clock, SystemClock
from ils.db.engine import create_numbering_engine
from ils.db.transactions import Transactions
from ils.jobs.banner import start_up_banner
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import Registrar, build_registry, run_workers
from ils.secret_key import resolve_secret_keys
from ils.settings import Settings
from ils.storage.backends import open_storages
from ils.web.errors import install_error_handlers
from ils.web.live import NotificationHub
from ils.web.routers import OPENAPI_TAGS, include_routers
from ils.web.security import CookieSigner, Passwords, SessionManager
from ils.web.state import WebState
from ils.workers import register_all


def _log_worker_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).error(
            "in-process workers stopped with an error", exc_info=task.exception()
        )


def create_app(
    settings: Settings,
    *,
    start_workers: bool | None = None,
    clock: Clock | None = None,
    password_hasher: PasswordHasher | None = None,
    registrars: Sequence[Registrar] = (),
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """The ILS web app for ``settings``.

    Args:
        settings: Loaded once by the caller (``ils serve``, a test fixture).
        start_workers: Run workers for every queue in this process; ``None`` follows
            ``settings.start_workers``. Off when workers run as ``ils worker``.
        clock: Time for session expiry and the job system (tests pass a manual one).
        password_hasher: argon2 parameters; tests pass cheap ones (the default costs
            about 64 MiB and a few hundred milliseconds per sign-in, by design).
        registrars: Handler registrars after ``ils.workers.register_all``, like
            ``ils worker --handlers``.
        on_started: Called once the lifespan has started everything, before the
            first request (``ils serve`` freezes its start-up heap there).

    Returns:
        The app; its lifespan must run (uvicorn does; tests use
        ``app.router.lifespan_context(app)``) before it answers requests.

    Raises:
        ConfigurationError: no usable secret key (required as soon as PostgreSQL or
            Redis is configured): checked here, so a misconfigured server stops
            before it listens rather than signing sessions its peers reject.
    """
    workers = settings.start_workers if start_workers is None else start_workers
    keys = resolve_secret_keys(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger = logging.getLogger(__name__)
        the_clock = clock or SystemClock()
        signer = CookieSigner(keys.current, keys.previous)
        storage = open_storages(settings)
        system = await JobSystem.open(settings, clock=the_clock)
        numbering = create_numbering_engine(system.engine)
        transactions = Transactions(system.engine, system.write_turn)
        auth = SessionManager(signer, timedelta(hours=settings.session_ttl_hours), the_clock)
        hub = NotificationHub(
            system.events, transactions, settings.notifications, the_clock, sessions=auth
        )
        stop = asyncio.Event()
        worker_task: asyncio.Task[None] | None = None
        try:
            # The dummy hash of Passwords costs a real hash: not on the event loop.
            passwords = await asyncio.to_thread(Passwords, password_hasher)
            app.state.ils = WebState(
                settings=settings,
                system=system,
                transactions=transactions,
                passwords=passwords,
                auth=auth,
                clock=the_clock,
                workers=workers,
                notifications=hub,
                storage=storage,
                numbering=numbering,
            )
            system.start_background()
            if workers:
                registry = build_registry(system, [register_all, *registrars])
                worker_task = asyncio.create_task(
                    run_workers(system, [], registry, stop=stop), name="ils-workers"
                )
                # run_workers starts everything before its first await: one turn of the
                # loop tells whether it started or failed.
                await asyncio.sleep(0)
                if worker_task.done():
                    worker_task.result()
                worker_task.add_done_callback(_log_worker_crash)
            banner = start_up_banner(
                system,
                "web",
                [
                    "workers: "
                    + ("run in this process" if workers else "not started here (run `ils worker`)"),
                    f"files: {storage.where}",
                    f"event loop: {type(asyncio.get_running_loop()).__module__.split('.')[0]}",
                    f"links in e-mails: {settings.public_url}",
                ],
            )
            logger.info("\n".join(banner))
            if on_started is not None:
                on_started()
            yield
        finally:
            if worker_task is not None and not worker_task.done():
                stop.set()  # running jobs get settings.shutdown_grace_s to finish
                await asyncio.gather(worker_task, return_exceptions=True)
            app.state.ils = None
            await hub.close()
            if numbering is not None:
                await numbering.dispose()
            await system.close()

    app = FastAPI(
        title="ILS",
        version=__version__,
        summary="The optical-lab platform: orders, invoices, examinations, marketplace.",
        lifespan=lifespan,
        openapi_tags=list(OPENAPI_TAGS),
    )
    install_error_handlers(app)
    include_routers(app)
    return app
