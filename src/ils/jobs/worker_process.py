"""Running workers in a process: load handlers, start the runner, stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict

from ils import __version__
from ils.errors import ConfigurationError, ILSError
from ils.jobs.attempt import JobListener, JobOutcome
from ils.jobs.banner import start_up_banner
from ils.jobs.catalogue import QueueConfig
from ils.jobs.model import JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.stores.local.worker_rows import WorkerDetails
from ils.jobs.system import JobSystem
from ils.jobs.worker_context import WorkerContext

#: Registers handlers on a registry. Handlers get what they need (settings, the app
#: database, the helpers for follow-up jobs, the clock) from the job system.
Registrar = Callable[[HandlerRegistry, WorkerContext], None]


def load_registrar(spec: str) -> Registrar:
    """Import ``package.module:function``, a function that registers handlers."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"handler spec {spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
        registrar = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load handlers from {spec!r}: {exc}") from None
    if not callable(registrar):
        raise ConfigurationError(f"{spec!r} is not a function")
    return registrar  # type: ignore[no-any-return]


def build_registry(system: JobSystem, registrars: Sequence[Registrar]) -> HandlerRegistry:
    """A registry with the handlers of ``registrars`` (the CLI passes the built-in
    ``ils.workers.register_all`` first: ``jobs`` never imports ``workers``)."""
    registry = HandlerRegistry(system.job_types)
    context = system.worker_context()
    for registrar in registrars:
        registrar(registry, context)
    return registry


def describe(system: JobSystem, runner: Runner, registry: HandlerRegistry) -> list[str]:
    """The start-up banner of a worker process: which queues it works, with which
    handlers (see :func:`ils.jobs.banner.start_up_banner`)."""
    lines = [f"worker id {runner.worker_id}"]
    seen = set()
    for consumer in runner.consumers:
        key = consumer.queue
        if key in seen:
            continue
        seen.add(key)
        config = consumer.config
        limit = (
            f"{config.rate_limit.max}/{config.rate_limit.duration_ms}ms"
            if config.rate_limit
            else "no limit"
        )
        handled = registry.registered(key)  # never empty: see run_workers
        lines.append(
            f"{key} ({config.name}): concurrency {config.concurrency}, {limit}, "
            f"handlers: {', '.join(handled)}"
        )
    return start_up_banner(system, "workers", lines)


async def run_workers(
    system: JobSystem,
    queue_keys: Sequence[str],
    registry: HandlerRegistry,
    *,
    stop: asyncio.Event,
    listeners: Sequence[JobListener] = (),
) -> None:
    """Run consumers for ``queue_keys`` until ``stop`` is set, then shut down gracefully."""
    logger = logging.getLogger(__name__)
    configs = system.catalogue.select(list(queue_keys))
    # A queue this process has no handler for is left to workers that have one (another
    # process, a Node BullMQ service): claiming its jobs here could only fail them.
    idle = [c.key for c in configs if not registry.registered(c.key)]
    configs = [c for c in configs if registry.registered(c.key)]
    if idle:
        logger.info("no handlers here for %s: their jobs wait for a worker that has", idle)
    tally = JobTally()
    runner = Runner(
        system.stores(),
        configs,
        registry,
        listeners=[system.metrics.observe, tally, *listeners],
        gates=system.gates(),
    )
    system.start_background()
    runner.start()
    logger.info("\n".join(describe(system, runner, registry)))
    beat = Heartbeat(system, runner, tally, configs)
    heartbeat = asyncio.create_task(beat.run(), name="ils-heartbeat")
    services = [
        asyncio.create_task(service(stop), name=f"ils-service-{config.key}")
        for config in configs
        for service in registry.services(config.key)
    ]
    try:
        await stop.wait()
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        # Services end by themselves once ``stop`` is set; give them the grace period.
        if services:
            await asyncio.wait(services, timeout=system.settings.shutdown_grace_s)
            for task in services:
                task.cancel()
            await asyncio.gather(*services, return_exceptions=True)
        with contextlib.suppress(ILSError):
            await system.local.forget_worker(runner.worker_id)
    logger.info(
        "stopping: no new jobs; %d running get %.0fs to finish",
        runner.active,
        system.settings.shutdown_grace_s,
    )
    await runner.stop(system.settings.shutdown_grace_s)
    # The gone worker's row keeps its final counts (the workers view's "recently gone").
    await beat.beat()
    logger.info("workers stopped")


class JobTally:
    """A job listener counting this process's finished attempts since it started, for
    its heartbeat: completed jobs, and attempts that failed (retried or not)."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0

    def __call__(self, outcome: JobOutcome) -> None:
        if outcome.state is JobState.COMPLETED:
            self.done += 1
        elif outcome.state is not JobState.ACTIVE:
            # ACTIVE: the failure could not be recorded (lock lost); not counted.
            self.failed += 1


class Heartbeat:
    """Records every ``worker_heartbeat_s`` that this process is alive and what it
    does: its queues and their slots, the jobs it runs now, its counts (the health
    body's "workers connected" and the workers view). A missed beat is only logged."""

    def __init__(
        self, system: JobSystem, runner: Runner, tally: JobTally, configs: Sequence[QueueConfig]
    ) -> None:
        self.system = system
        self.runner = runner
        self.tally = tally
        self.queues = [config.key for config in configs]
        self.concurrency = {config.key: config.concurrency for config in configs}
        self.started_at_ms = system.clock.now_ms()
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def details(self) -> WorkerDetails:
        """What this process does now."""
        return WorkerDetails(
            version=__version__,
            concurrency=self.concurrency,
            running=[asdict(job) for job in self.runner.running()],
            jobs_done=self.tally.done,
            jobs_failed=self.tally.failed,
        )

    async def beat(self) -> None:
        """One heartbeat; an unreachable database is logged, never raised."""
        try:
            await self.system.local.record_worker(
                self.runner.worker_id,
                self.host,
                self.pid,
                self.queues,
                self.started_at_ms,
                details=self.details(),
            )
        except ILSError as exc:
            logging.getLogger(__name__).warning("worker heartbeat not recorded: %s", exc)

    async def run(self) -> None:
        """Beat until cancelled."""
        while True:
            await self.beat()
            await asyncio.sleep(self.system.settings.worker_heartbeat_s)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (a second signal is left to the default)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
