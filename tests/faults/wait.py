"""Waiting on conditions instead of sleeping a fixed time: now :mod:`ils.testing`.

The helpers moved into the package so that handler authors get them too; this module
re-exports them for the fault tests that import them from here.

* ``await eventually(check, timeout=5.0)``: poll ``check`` (a function returning
  ``bool``, or an ``async`` one) until it is true; fail with ``AssertionError``
  after ``timeout`` seconds.
* ``await still(check, for_s=0.3)``: the opposite for things that must *not* happen:
  fail as soon as ``check`` is true, pass when it stayed false for ``for_s``.
  Proving that something does not happen needs some window; keep it short.
* ``wait_until(check, timeout=5.0)``: ``eventually`` for synchronous code.
"""

from __future__ import annotations

from ils.testing import Check, eventually, still, wait_until

__all__ = ["Check", "eventually", "still", "wait_until"]
