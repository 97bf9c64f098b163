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

from ils.errors import ConfigurationError, ILSError
from ils.queue.consumer import JobListener
from ils.queue.registry import HandlerRegistry
from ils.queue.runner import Runner
from ils.queue.system import JobSystem

#: Registers handlers on a registry. Handlers get what they need (settings, the app
#: database, the helpers for follow-up jobs, the clock) from the job system.
Registrar = Callable[[HandlerRegistry, JobSystem], None]


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
    ``ils.workers.register_all`` first: ``queue`` never imports ``workers``)."""
    registry = HandlerRegistry(system.job_types)
    for registrar in registrars:
        registrar(registry, system)
    return registry


def describe(system: JobSystem, runner: Runner, registry: HandlerRegistry) -> list[str]:
    """Start-up lines: mode, and which queues this process works with which handlers."""
    lines = [f"ILS workers {runner.worker_id}: {system.mode_sentence()}"]
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
            f"  {key} ({config.name}): concurrency {config.concurrency}, {limit}, "
            f"handlers: {', '.join(handled)}"
        )
    return lines


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
    runner = Runner(
        system.stores(),
        configs,
        registry,
        listeners=[system.metrics.observe, *listeners],
        gates=system.gates(),
    )
    system.start_background()
    runner.start()
    for line in describe(system, runner, registry):
        logger.info(line)
    heartbeat = asyncio.create_task(
        _heartbeat(system, runner.worker_id, [c.key for c in configs]), name="ils-heartbeat"
    )
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
    logger.info("workers stopped")


async def _heartbeat(system: JobSystem, worker_id: str, queues: list[str]) -> None:
    """Record every ``worker_heartbeat_s`` that this process works ``queues`` (the
    health body's "workers connected"); a missed beat is only logged."""
    started = system.clock.now_ms()
    host = socket.gethostname()
    while True:
        try:
            await system.local.record_worker(worker_id, host, os.getpid(), queues, started)
        except ILSError as exc:
            logging.getLogger(__name__).warning("worker heartbeat not recorded: %s", exc)
        await asyncio.sleep(system.settings.worker_heartbeat_s)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (a second signal is left to the default)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
