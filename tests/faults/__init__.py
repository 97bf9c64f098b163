"""Fault-injection test infrastructure: faults between the job system and its servers.

Modules (each documents its API in its docstring):

* :mod:`tests.faults.proxy`: :class:`~tests.faults.proxy.FaultProxy`, a TCP proxy on
  its own thread: latency, pause/resume, periodic pauses, dropped connections (RST),
  blackhole (partition that heals), refused connections; counters.
* :mod:`tests.faults.redis_server`: :class:`~tests.faults.redis_server.PrivateRedis`,
  a ``redis-server`` child process with AOF: ``kill9()``, ``restart()``,
  ``pause()`` (SIGSTOP) / ``resume()``, ``stop()``.
* :mod:`tests.faults.load`: :class:`~tests.faults.load.CpuHogs` (busy processes),
  :func:`~tests.faults.load.frozen` (SIGSTOP/SIGCONT a process),
  :class:`~tests.faults.load.LoopStalls` (block the test's own event loop).
* :mod:`tests.faults.smtp`: :class:`~tests.faults.smtp.SmtpRecorder`, an SMTP server on
  its own thread counting messages per Message-ID and per job, reporting duplicates.
* :mod:`tests.faults.wait`: ``eventually`` / ``still`` / ``wait_until``.

Fixtures are in ``tests/faults/conftest.py``. Mark scenario tests ``pytest.mark.redis``
when they talk to a Redis server and ``pytest.mark.slow`` when they take more than a
few seconds.
"""
