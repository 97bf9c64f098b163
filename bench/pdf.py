"""PDF rendering figures: documents per second per type, one process and the pool.

Prints, per document type: documents/s rendered one after another in this process,
and documents/s through ``ProcessPoolRenderer`` (the worker's pool) with ``--pool``
processes and as many renders in flight. Then, why the pool: the longest stall of
the event loop while documents render inline (what lock renewal and other jobs
would wait) against the same with the pool.

``--render-png`` also writes each document as a PDF and its first page as a PNG
under ``--out`` (``var/bench-pdf`` by default), for a person to look at. PNGs are
drawn with PDFium (``pypdfium2``, a dev dependency) or, without it, ``pdftoppm``.

    .venv/bin/python bench/pdf.py [--count 200] [--pool N] [--render-png] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.pool import InlineRenderer, ProcessPoolRenderer, Renderer
from ils.workers.pdf.render import render_document
from ils.workers.pdf.samples import sample


def single(kind: DocumentKind, count: int) -> float:
    """Documents per second, one after another in this process."""
    data = sample(kind)
    render_document(kind, data)  # warm-up: imports, font metrics
    start = time.perf_counter()
    for _ in range(count):
        render_document(kind, data)
    return count / (time.perf_counter() - start)


async def pooled(pool: ProcessPoolRenderer, kind: DocumentKind, count: int) -> float:
    """Documents per second through the pool, ``pool.size`` renders in flight."""
    data = sample(kind)
    await asyncio.gather(*(pool.render(kind, data) for _ in range(pool.size)))  # warm-up
    semaphore = asyncio.Semaphore(pool.size * 2)

    async def one() -> None:
        async with semaphore:
            await pool.render(kind, data)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - start)


async def loop_stall(renderer: Renderer, count: int) -> float:
    """The longest the event loop went without a turn while ``count`` lab tickets
    rendered (3 at a time, the pdf queue's concurrency), in milliseconds."""
    kind = DocumentKind.LAB_WORK_TICKET
    data = sample(kind)
    await renderer.render(kind, data)
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    semaphore = asyncio.Semaphore(3)

    async def one() -> None:
        async with semaphore:
            await asyncio.sleep(0)  # a handler awaits its database reads first
            await renderer.render(kind, data)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(one() for _ in range(count)))
    done.set()
    await tick
    return worst * 1000


def write_pngs(out: Path) -> None:
    """Each document's PDF, and its first page as PNG beside it."""
    out.mkdir(parents=True, exist_ok=True)
    pdfs = []
    for kind in DocumentKind:
        path = out / f"{kind.value}.pdf"
        path.write_bytes(render_document(kind, sample(kind)))
        pdfs.append(path)
    try:
        import pypdfium2 as pdfium
    except ImportError:
        pdfium = None
    for path in pdfs:
        png = path.with_suffix(".png")
        if pdfium is not None:
            document = pdfium.PdfDocument(path)
            document[0].render(scale=150 / 72).to_pil().save(png)
            document.close()
        elif shutil.which("pdftoppm"):
            subprocess.run(
                ["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile",
                 str(path), str(png.with_suffix(""))],
                check=True,
            )  # fmt: skip
        else:
            print(
                "cannot draw PNGs: install the dev dependencies (pip install -e '.[dev]', "
                "for pypdfium2) or poppler-utils (apt-get install poppler-utils, for "
                "pdftoppm). The PDFs are written."
            )
            break
        print(f"  {png}")
    print(f"PDFs and first pages under {out}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="documents per type and mode")
    parser.add_argument("--pool", type=int, default=os.cpu_count() or 1, help="pool processes")
    parser.add_argument("--render-png", action="store_true", help="write PDFs and PNGs")
    parser.add_argument("--out", type=Path, default=Path("var/bench-pdf"))
    args = parser.parse_args()

    if args.render_png:
        write_pngs(args.out)
    print(f"{args.count} documents per type; pool of {args.pool} processes; {os.cpu_count()} CPUs")
    print(f"{'document':<18} {'1 process':>12} {'pool':>12} {'ratio':>7} {'size':>9}")
    pool = ProcessPoolRenderer(args.pool)
    try:
        for kind in DocumentKind:
            one = single(kind, args.count)
            many = await pooled(pool, kind, args.count)
            size = len(render_document(kind, sample(kind)))
            print(
                f"{kind.value:<18} {one:>8.0f}/s   {many:>8.0f}/s  {many / one:>6.2f}x"
                f" {size / 1024:>6.1f} KiB"
            )
        stall_count = max(20, args.count // 4)
        inline = await loop_stall(InlineRenderer(), stall_count)
        in_pool = await loop_stall(pool, stall_count)
        print(
            f"longest event-loop stall while {stall_count} lab tickets render, 3 at a time: "
            f"inline {inline:.1f} ms, pool {in_pool:.1f} ms"
        )
    finally:
        pool.close()


if __name__ == "__main__":
    asyncio.run(main())
