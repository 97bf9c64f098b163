"""One load-generating process of ``bench/users.py``: a share of the signed-in users.

Run by ``bench/users.py`` (never by hand) as ``python bench/users_support/client.py``;
it imports nothing of ILS, only httpx (and uvloop when installed), so the client costs
what a browser-like client costs and nothing of the server's start-up.

Protocol, one JSON document per line:

* stdin, first line: the run's configuration (the server's URL, the password, this
  process's users, the patients of each practice, think times, ...);
* stdout: ``{"event": "ready", ...}`` once every user of the process has signed in and
  has its notification stream open;
* stdin, second line: ``{"start": t, "window_start": t, "window_end": t, "stop": t}``,
  times on ``time.monotonic()``, which is ``CLOCK_MONOTONIC``, one clock for every
  process of the machine: users act from ``start`` to ``window_end``, requests started
  inside the window are measured, and the streams stay open until ``stop`` for the
  notifications of the window's last actions;
* stdout: ``{"event": "result", ...}``: latencies and errors per endpoint, the actions
  that make notifications (order id, status, when sent), every notification received
  (order id, status, user, when), the streams, this process's CPU and event-loop lag.

Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

STREAM_PATH: Final = "/api/notifications/stream"
#: How long a user's idle connection is kept for the next click: below ``ils serve``'s
#: 75 s keep-alive (``ILS_LIMITS__KEEP_ALIVE_S``), so the client drops it before the
#: server could close it under a request in flight (a browser retries that case
#: silently; browsers keep idle connections for minutes). Until 2026-12-07 this was
#: 4 s, under uvicorn's old 5 s default: with 5-15 s between clicks every request
#: opened a connection, which a browser would not (docs/performance.md).
KEEPALIVE_EXPIRY_S: Final = 60.0
#: How long a browser waits before reconnecting a dropped stream (the server's ``retry``).
RECONNECT_S: Final = 2.0
#: Recent order ids kept per company for "open an order".
KNOWN_ORDERS: Final = 200
#: Sign-in attempts per user (transport errors, 5xx, 429) before the process gives up.
SIGN_IN_ATTEMPTS: Final = 5
#: How long the process waits for all its streams to open.
CONNECT_TIMEOUT_S: Final = 180.0
LAG_TICK_S: Final = 0.1
#: Requests at least this slow (the API target) are listed with their start times, to
#: tell stalls of the whole server (many at once) from slow requests of their own.
SLOW_S: Final = 0.1
#: One TLS context for every user's client: httpx builds one per client otherwise
#: (loading the CA bundle: about 50 ms of CPU each, half a minute for 500 users), and
#: the server is plain HTTP anyway.
TLS: Final = ssl.create_default_context()

#: The lab's status moves by role: (listed status, target status); "shipped" goes
#: through /ship, which lab_tech (not staff) may use; staff accept and deliver.
LAB_MOVES: Final[dict[str, list[tuple[str, str]]]] = {
    "staff": [
        ("submitted", "accepted"),
        ("accepted", "in_production"),
        ("in_production", "quality_check"),
        ("shipped", "delivered"),
    ],
    "lab_tech": [
        ("accepted", "in_production"),
        ("in_production", "quality_check"),
        ("quality_check", "shipped"),
    ],
}
PRACTICE_ACTIONS: Final = (("list", 0.40), ("open", 0.35), ("download", 0.25))
LAB_ACTIONS: Final = (("list", 0.20), ("open", 0.20), ("move", 0.45), ("download", 0.15))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def order_body(lab_id: str, patient_id: str, rng: random.Random) -> dict[str, Any]:
    """A valid progressive order (the body of bench/orders.py), a little varied."""
    sphere = rng.choice(("-2.25", "-1.50", "-0.75", "+0.50", "+1.25"))
    return {
        "patient_id": patient_id,
        "lab_id": lab_id,
        "lens": {
            "design": "progressive",
            "material": "cr39",
            "index": "1.60",
            "coatings": ["anti_reflective"],
        },
        "right": {"sphere": sphere, "cylinder": "-0.75", "axis": 90, "add": "2.00"},
        "left": {"sphere": sphere, "cylinder": "0.00", "add": "2.00"},
        "pd_binocular": "63.0",
        "seg_height_right": "22.00",
        "seg_height_left": "22.00",
        "frame": {"box_a": "52.00", "box_b": "38.00", "dbl": "18.00", "ed": "55.00"},
        "price_cents": 12900,
    }


@dataclass
class Window:
    start: float = 0.0
    window_start: float = float("inf")
    window_end: float = float("inf")
    stop: float = float("inf")

    def inside(self, at: float) -> bool:
        return self.window_start <= at < self.window_end


@dataclass
class Stats:
    """What this process measured."""

    window: Window
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Requests outside the window (warm-up, the last ones), not measured.
    unmeasured: int = 0
    #: [order id, status, sent at, company to notify, inside the window]
    actions: list[list[Any]] = field(default_factory=list)
    #: [order id, status, user id, received at]
    receipts: list[list[Any]] = field(default_factory=list)
    other_events: int = 0
    stream_drops: int = 0
    stream_reconnects: int = 0
    lags: list[float] = field(default_factory=list)
    sign_in_ms: list[float] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: [started at, endpoint, ms] of the requests slower than :data:`SLOW_S`.
    slow: list[list[Any]] = field(default_factory=list)

    def record(self, endpoint: str, started: float, elapsed: float, error: str | None) -> None:
        if not self.window.inside(started):
            self.unmeasured += 1
            return
        self.latencies.setdefault(endpoint, []).append(1000 * elapsed)
        if elapsed >= SLOW_S:
            self.slow.append([started, endpoint, 1000 * elapsed])
        if error is not None:
            counts = self.errors.setdefault(endpoint, {})
            counts[error] = counts.get(error, 0) + 1

    def error(self, endpoint: str, error: str) -> None:
        """An error that is not a request's (a stream that ended)."""
        counts = self.errors.setdefault(endpoint, {})
        counts[error] = counts.get(error, 0) + 1

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


@dataclass
class Shared:
    """What the users of this process know about their companies (a browser's user
    learns it from the pages; here the process's users share it per company)."""

    config: dict[str, Any]
    orders: dict[str, list[str]] = field(default_factory=dict)
    documents: dict[str, list[str]] = field(default_factory=dict)
    #: Orders placed before the run, whose PDFs are the first to exist.
    seeds: dict[str, list[str]] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)

    def learn_orders(self, company: str, ids: list[str]) -> None:
        known = self.orders.setdefault(company, [])
        fresh = [order_id for order_id in ids if order_id not in known]
        known[:0] = fresh
        del known[KNOWN_ORDERS:]

    def learn_documents(self, company: str, ids: list[str]) -> None:
        known = self.documents.setdefault(company, [])
        known.extend(doc_id for doc_id in ids if doc_id not in known)

    def mine(self, order_id: str) -> bool:
        """Whether this process's lab users move ``order_id`` (orders are split between
        the client processes so two lab users never race for one order)."""
        return int(order_id[:8], 16) % int(self.config["processes"]) == int(self.config["index"])


class User:
    """One signed-in person: a browser tab with the notification stream open."""

    def __init__(self, spec: dict[str, Any], shared: Shared, stats: Stats, seed: int) -> None:
        self.id: str = spec["id"]
        self.email: str = spec["email"]
        self.company: str = spec["company"]
        self.kind: str = spec["kind"]
        self.role: str = spec["role"]
        self.shared = shared
        self.stats = stats
        self.rng = random.Random(seed)
        config = shared.config
        self.client = httpx.AsyncClient(
            base_url=config["base"],
            verify=TLS,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(
                max_connections=4, max_keepalive_connections=2, keepalive_expiry=KEEPALIVE_EXPIRY_S
            ),
        )
        self.connected = asyncio.Event()
        self.streaming = False
        self.last_event_id: str | None = None
        self.next_order_at = float("inf")

    # -- requests -------------------------------------------------------------------

    async def call(
        self, endpoint: str, method: str, url: str, expect: int = 200, **kwargs: Any
    ) -> httpx.Response | None:
        """One request, measured under ``endpoint``; the response if it was ``expect``."""
        started = time.monotonic()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.stats.record(endpoint, started, time.monotonic() - started, type(exc).__name__)
            return None
        ok = response.status_code == expect
        self.stats.record(
            endpoint, started, time.monotonic() - started, None if ok else str(response.status_code)
        )
        return response if ok else None

    async def sign_in(self, password: str) -> None:
        for attempt in range(SIGN_IN_ATTEMPTS):
            started = time.monotonic()
            try:
                response = await self.client.post(
                    "/api/auth/sign-in", json={"email": self.email, "password": password}
                )
            except httpx.HTTPError as exc:
                log(f"sign-in of {self.email}: {type(exc).__name__}; again")
                await asyncio.sleep(1 + attempt)
                continue
            self.stats.sign_in_ms.append(1000 * (time.monotonic() - started))
            if response.status_code == 200:
                self.client.headers["X-CSRF-Token"] = str(response.json()["csrf_token"])
                return
            if response.status_code != 429 and response.status_code < 500:
                raise RuntimeError(
                    f"sign-in of {self.email}: {response.status_code} {response.text[:200]}"
                )
            wait = float(response.headers.get("Retry-After", 1 + attempt))
            log(f"sign-in of {self.email}: {response.status_code}; again in {wait:.0f} s")
            await asyncio.sleep(wait)
        raise RuntimeError(f"sign-in of {self.email} failed {SIGN_IN_ATTEMPTS} times")

    # -- the notification stream ----------------------------------------------------

    async def stream(self) -> None:
        """Keep the stream open like a browser: reconnect with ``Last-Event-ID``."""
        endpoint = "GET /api/notifications/stream"
        while True:
            headers = {"Accept": "text/event-stream"}
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = self.last_event_id
            started = time.monotonic()
            reason = "ended by the server"
            try:
                async with self.client.stream(
                    "GET", STREAM_PATH, headers=headers, timeout=httpx.Timeout(30.0, read=None)
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        reason = str(response.status_code)
                    else:
                        await self._read(response, started, endpoint)
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            finally:
                self.streaming = False
            now = time.monotonic()
            if now >= self.stats.window.stop:
                return
            if self.stats.window.inside(now):
                self.stats.stream_drops += 1
                self.stats.error(endpoint, f"stream lost: {reason}")
            log(f"stream of {self.email}: {reason}; reconnecting")
            await asyncio.sleep(RECONNECT_S)
            self.stats.stream_reconnects += 1

    async def _read(self, response: httpx.Response, started: float, endpoint: str) -> None:
        event, event_id, data = "", "", list[str]()
        first = True
        async for line in response.aiter_lines():
            if first:
                first = False
                self.streaming = True
                self.connected.set()
                # Opening the stream is a request like the others (the reconnects of
                # the window; the first ones belong to the ramp-up).
                self.stats.record(endpoint, started, time.monotonic() - started, None)
            if line:
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                continue
            if event == "notification" and data:
                self._receive("\n".join(data), time.monotonic())
                if event_id:
                    self.last_event_id = event_id
            event, event_id, data = "", "", []

    def _receive(self, data: str, at: float) -> None:
        try:
            body = json.loads(data)
            link, title, kind = str(body["link"] or ""), str(body["title"]), str(body["kind"])
        except (ValueError, KeyError, TypeError):
            self.stats.other_events += 1
            return
        if kind != "order" or not link.startswith("/orders/") or ": " not in title:
            self.stats.other_events += 1
            return
        status = title.rsplit(": ", 1)[1].strip().replace(" ", "_")
        self.stats.receipts.append([link.split("/")[2], status, self.id, at])

    # -- what the user does ---------------------------------------------------------

    async def run(self) -> None:
        """Think, act, think, ... until the window ends."""
        window = self.stats.window
        think_min, think_max = self.shared.config["think"]
        every = float(self.shared.config["order_every"])
        if self.kind == "practice" and every > 0:
            self.next_order_at = window.start + self.rng.uniform(0, every)
        # Users arrive spread over one think time, not all in the same second.
        await self._sleep_until(window.start + self.rng.uniform(0, think_max))
        while time.monotonic() < window.window_end:
            started = time.monotonic()
            try:
                await self.act()
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                # A body that is not what the API documents: an error of the run, not
                # a reason to stop this user.
                self.stats.record("unexpected response", started, 0.0, type(exc).__name__)
                log(f"{self.email}: unexpected response: {exc!r}")
            await self._sleep_until(time.monotonic() + self.rng.uniform(think_min, think_max))

    async def _sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, min(at, self.stats.window.window_end) - time.monotonic()))

    async def act(self) -> None:
        if self.kind == "practice" and time.monotonic() >= self.next_order_at:
            every = float(self.shared.config["order_every"])
            self.next_order_at += every * self.rng.uniform(0.5, 1.5)
            await self.place_order()
            return
        actions = PRACTICE_ACTIONS if self.kind == "practice" else LAB_ACTIONS
        names = [name for name, _ in actions]
        weights = [weight for _, weight in actions]
        choice = self.rng.choices(names, weights)[0]
        chosen: dict[str, Callable[[], Awaitable[None]]] = {
            "list": self.list_orders,
            "open": self.open_order,
            "download": self.download,
            "move": self.move,
        }
        await chosen[choice]()

    async def list_orders(self) -> None:
        response = await self.call("GET /api/orders", "GET", "/api/orders", params={"limit": 20})
        if response is not None:
            self.shared.learn_orders(self.company, [o["id"] for o in response.json()["items"]])

    async def open_order(self) -> None:
        """The order page: the order, then its documents."""
        known = self.shared.orders.get(self.company, [])
        seeds = self.shared.seeds.get(self.company, [])
        if seeds and (not known or self.rng.random() < 0.3):
            order_id = self.rng.choice(seeds)
        elif known:
            order_id = self.rng.choice(known[:50])
        else:
            await self.list_orders()
            return
        response = await self.call("GET /api/orders/{id}", "GET", f"/api/orders/{order_id}")
        if response is None:
            return
        documents = await self.call(
            "GET /api/documents?subject=", "GET", "/api/documents", params={"subject": order_id}
        )
        if documents is not None:
            self.shared.learn_documents(self.company, [d["id"] for d in documents.json()])

    async def download(self) -> None:
        known = self.shared.documents.get(self.company)
        if not known:
            # No PDF of the company's known yet: open an order, as a user looking for one.
            self.stats.skip("download: no document known yet, opened an order")
            await self.open_order()
            return
        document_id = self.rng.choice(known)
        await self.call("GET /api/documents/{id}", "GET", f"/api/documents/{document_id}")

    async def place_order(self) -> None:
        patients = self.shared.config["patients"][self.company]
        body = order_body(self.shared.config["lab"], self.rng.choice(patients), self.rng)
        sent = time.monotonic()
        response = await self.call("POST /api/orders", "POST", "/api/orders", 201, json=body)
        if response is None:
            return
        order = response.json()
        self.shared.learn_orders(self.company, [order["id"]])
        self.stats.actions.append(
            [order["id"], "submitted", sent, order["lab_id"], self.stats.window.inside(sent)]
        )

    async def move(self) -> None:
        """Move one of the lab's orders a step along its lifecycle."""
        listed, target = self.rng.choice(LAB_MOVES.get(self.role, LAB_MOVES["staff"]))
        response = await self.call(
            "GET /api/orders?status=",
            "GET",
            "/api/orders",
            params={"status": listed, "limit": 50},
        )
        if response is None:
            return
        items = [
            item
            for item in response.json()["items"]
            if self.shared.mine(item["id"]) and item["id"] not in self.shared.claimed
        ]
        if not items:
            self.stats.skip(f"move: no {listed} order free")
            return
        item = self.rng.choice(items)
        order_id = item["id"]
        self.shared.claimed.add(order_id)
        try:
            sent = time.monotonic()
            if target == "shipped":
                moved = await self.call(
                    "POST /api/orders/{id}/ship",
                    "POST",
                    f"/api/orders/{order_id}/ship",
                    json={
                        "tracking_number": f"TRK{self.rng.randrange(10**9):09d}",
                        "carrier": "Royal Mail",
                    },
                )
            else:
                moved = await self.call(
                    "POST /api/orders/{id}/status",
                    "POST",
                    f"/api/orders/{order_id}/status",
                    json={"status": target},
                )
        finally:
            self.shared.claimed.discard(order_id)
        if moved is not None:
            self.stats.actions.append(
                [order_id, target, sent, item["company_id"], self.stats.window.inside(sent)]
            )


async def lag_monitor(stats: Stats) -> None:
    """How late this process's event loop wakes up: the client's own delay, which every
    latency it measures includes."""
    while True:
        started = time.monotonic()
        await asyncio.sleep(LAG_TICK_S)
        now = time.monotonic()
        if stats.window.inside(started):
            stats.lags.append(1000 * (now - started - LAG_TICK_S))


async def read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def cpu_now() -> float:
    times = os.times()
    return times.user + times.system


async def main() -> None:
    config: dict[str, Any] = json.loads(await read_line())
    window = Window()
    stats = Stats(window)
    shared = Shared(config, seeds={k: list(v) for k, v in config["seeds"].items()})
    users = [
        User(spec, shared, stats, seed=int(config["seed"]) * 100_003 + n)
        for n, spec in enumerate(config["users"])
    ]
    tag = f"client {config['index']}"
    started = time.monotonic()
    gate = asyncio.Semaphore(int(config["sign_in_concurrency"]))
    streams: list[asyncio.Task[None]] = []

    async def arrive(user: User) -> None:
        async with gate:
            await user.sign_in(str(config["password"]))
        streams.append(asyncio.create_task(user.stream()))

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            opened = sum(user.connected.is_set() for user in users)
            log(f"{tag}: {len(stats.sign_in_ms)} signed in, {opened} streams open")

    reporter = asyncio.create_task(progress())
    await asyncio.gather(*(arrive(user) for user in users))
    signed_in_s = time.monotonic() - started
    try:
        await asyncio.wait_for(
            asyncio.gather(*(user.connected.wait() for user in users)), CONNECT_TIMEOUT_S
        )
    except TimeoutError:
        log(f"{tag}: not every stream opened within {CONNECT_TIMEOUT_S:.0f} s")
    reporter.cancel()
    # What exists now lives as long as the run: keep the collector's full passes short.
    gc.collect()
    gc.freeze()
    emit(
        {
            "event": "ready",
            "signed_in": len(users),
            "streams": sum(user.connected.is_set() for user in users),
            "sign_in_s": signed_in_s,
            "ramp_s": time.monotonic() - started,
        }
    )
    go = json.loads(await read_line())
    window.start, window.window_start = float(go["start"]), float(go["window_start"])
    window.window_end, window.stop = float(go["window_end"]), float(go["stop"])
    lagger = asyncio.create_task(lag_monitor(stats))
    # The users start at ``start`` (the warm-up), each after a random part of a think
    # time; the CPU is read from the window's start.
    running = asyncio.gather(*(user.run() for user in users))
    await asyncio.sleep(max(0.0, window.window_start - time.monotonic()))
    cpu_start = cpu_now()
    await running
    cpu_window = cpu_now() - cpu_start
    measured_s = max(1e-9, time.monotonic() - window.window_start)
    open_at_end = sum(user.streaming for user in users)
    await asyncio.sleep(max(0.0, window.stop - time.monotonic()))
    lagger.cancel()
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, lagger, return_exceptions=True)
    await asyncio.gather(*(user.client.aclose() for user in users), return_exceptions=True)
    emit(
        {
            "event": "result",
            "index": config["index"],
            "users": len(users),
            "latencies": stats.latencies,
            "errors": stats.errors,
            "unmeasured": stats.unmeasured,
            "actions": stats.actions,
            "receipts": stats.receipts,
            "other_events": stats.other_events,
            "stream_drops": stats.stream_drops,
            "stream_reconnects": stats.stream_reconnects,
            "streams_open_at_end": open_at_end,
            "lags_ms": stats.lags,
            "sign_in_ms": stats.sign_in_ms,
            "skipped": stats.skipped,
            "slow": stats.slow,
            "cpu_s": cpu_window,
            "measured_s": measured_s,
        }
    )


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
