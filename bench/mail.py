"""E-mails per second through the SMTP transport: pooled connections against one per message.

Starts a local SMTP server (aiosmtpd's discarding ``Sink``, in a process of its own
so it does not share this interpreter's CPU), renders one order confirmation with
the real templates, composes ``--messages`` distinct messages from it (each with its
own Message-ID), and sends them through ``ils.workers.email.smtp.SmtpTransport``
with ``--concurrency`` sends in flight (the e-mail queue's 5 by default):

* reuse: the transport as the worker runs it, connections kept across messages;
* new connection per message: the same transport with
  ``max_messages_per_connection=1``, so every message pays connect, greeting, EHLO
  and QUIT.

What is measured is the transport (SMTP round trips), not the job path: the message
log's commits and the queue's rate limit (100 a minute in production) are left out.

    .venv/bin/python bench/mail.py [--messages 2000] [--concurrency 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from ils.settings import SmtpSettings
from ils.workers.email.compose import compose
from ils.workers.email.drafts import Brand, MailDraft, Recipient
from ils.workers.email.render import Renderer
from ils.workers.email.smtp import SmtpTransport
from ils.workers.email.transport import Outgoing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's command line with the Sink handler (accepts and discards)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
         "aiosmtpd.handlers.Sink"],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the SMTP server did not start")


def messages(count: int, config: SmtpSettings) -> list[Outgoing]:
    """``count`` order confirmations, rendered once with the real templates."""
    brand = Brand("Clear View Lab", "CLEAR VIEW", "#0a7c59", ("1 Lens Street",), None, None)
    recipient = Recipient("user:1", "ann@brightside.example", "Ann Optom", None)
    rx = {"label": "R", "sphere": "-2.25", "cylinder": "-0.75", "axis": "180", "add": "+2.00"}
    context = {
        "brand": brand,
        "platform": {"name": "ILS", "url": "http://127.0.0.1:8000"},
        "recipient_name": recipient.name,
        "subject": "Order ORD-2026-000042 received by Clear View Lab",
        "order": {
            "number": "ORD-2026-000042",
            "status": "submitted",
            "practice": "Brightside Opticians",
            "lab": "Clear View Lab",
            "patient_reference": "P-0042",
            "created": datetime(2026, 11, 28, tzinfo=UTC),
            "due_date": None,
            "price": f"{Decimal('129.50')}",
            "currency": "GBP",
            "line_items": ["Progressive polycarbonate index 1.60 lenses, pair"],
            "rx": {"eyes": [{**rx, "prism": ""}], "measurements": ["PD: 63.5 mm"]},
        },
        "links": {"order": "http://127.0.0.1:8000/orders/1", "home": "http://127.0.0.1:8000/"},
    }
    body = Renderer().render("order_confirmation", context)
    draft = MailDraft(recipient, "c1", brand, context["subject"], "order_confirmation", context)
    now = datetime.now(UTC)
    return [
        compose(
            draft,
            body,
            config=config,
            message_id=f"<bench-{i}@ils.example>",
            date=now,
            file_stem=f"bench-{i}",
            job_ref=f"email/order-confirmation/bench-{i}",
        )
        for i in range(count)
    ]


async def no_log() -> None:
    """Stands in for the message log's commit before DATA (not measured here)."""


async def run(transport: SmtpTransport, mails: list[Outgoing]) -> float:
    """Send every message, ``pool_size`` at a time; messages per second."""
    start = time.perf_counter()
    await asyncio.gather(*(transport.send(mail, no_log) for mail in mails))
    elapsed = time.perf_counter() - start
    await transport.close()
    return len(mails) / elapsed


async def main(count: int, concurrency: int) -> None:
    port = free_port()
    server = start_server(port)
    try:
        base = SmtpSettings(host="127.0.0.1", port=port, security="none")
        mails = messages(count, base)
        size = len(mails[0].data)
        # Warm-up: imports, the EHLO name lookup, the server's first connections.
        await run(SmtpTransport(base, concurrency), mails[: concurrency * 4])
        reuse_transport = SmtpTransport(base, concurrency)
        reuse = await run(reuse_transport, mails)
        fresh_config = base.model_copy(update={"max_messages_per_connection": 1})
        fresh_transport = SmtpTransport(fresh_config, concurrency)
        fresh = await run(fresh_transport, mails)
    finally:
        server.terminate()
        server.wait(10)
    print(f"{count} messages of {size:,} bytes, {concurrency} in flight, aiosmtpd on 127.0.0.1")
    for name, rate, transport in (
        ("connection reuse", reuse, reuse_transport),
        ("new connection per message", fresh, fresh_transport),
    ):
        print(f"  {name + ':':29}{rate:8.1f} e-mails/s ({transport.connects} connections)")
    print(f"  {'ratio reuse / new:':29}{reuse / fresh:8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.concurrency))
