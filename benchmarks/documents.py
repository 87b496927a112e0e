"""Documents as context: reading and indexing, retrieval per prompt, and the window's loop
while a large file is read.

Prints, as medians over --rounds:
- extraction + indexing of a --pages-page PDF (made here with fpdf2; making it is not timed):
  PDFium text extraction, passages, the history's FTS5 index, one transaction;
- retrieval latency per prompt over --index-pages indexed pages (four documents): the whole
  per-prompt path (BM25 search across the conversation's documents, picking what fits the
  budget, wording the context), median and p95 over --prompts prompts;
- the longest event-loop gap (5 ms precise QTimer) in the real window (offscreen) while the
  PDF is attached and read, from the drop until its chip is ready (median of rounds; the
  first round, which also imports PDFium, named apart), and the same meter over an idle
  window for as long, measured back to back. Measured first, before anything imported PDFium.
- hybrid retrieval (BM25 + embeddings, core/chat/retrieval.py) over the same pages: the
  per-prompt work on this computer (BM25 ids, cosine over the passages' vectors, fusion,
  passages, budget, context), median and p95, the first prompt (vectors read from the history)
  apart; and, separately, the network call that embeds the prompt (loopback server, its
  hashed bag-of-words vectors of 1,024 dimensions), and embedding every passage once;
- the first text file in a legacy encoding (cp1252) attached in a fresh window (a child
  process each): the longest loop gap while it is read, with start-up's background loading
  warming the encoding detection and without that warm-up, alternated, plus the longest
  gap during that start-up loading itself.
Targets: retrieval <= 50 ms per prompt; loop gap <= 33 ms while a large file is processed.

    python benchmarks/documents.py [--pages 300] [--index-pages 1000] [--prompts 50]
                                   [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also run as a plain script
    sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402
from tests.support.documents import FACT_QUESTION, filler, make_pdf  # noqa: E402
from tests.support.openai_server import LoopbackServer  # noqa: E402

from benchmarks.stream_throughput import GapMeter, machine_facts  # noqa: E402
from desktop_chat.app import (  # noqa: E402
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
)
from desktop_chat.core.chat import documents  # noqa: E402
from desktop_chat.core.chat.retrieval import HybridRetrieval  # noqa: E402
from desktop_chat.core.chat.usage import estimate_tokens  # noqa: E402
from desktop_chat.core.config.providers import Endpoint  # noqa: E402
from desktop_chat.core.documents.extract import Section, whole_text  # noqa: E402
from desktop_chat.core.history.documents import SEARCH_LIMIT, StoredDocument  # noqa: E402
from desktop_chat.core.history.store import Store  # noqa: E402
from desktop_chat.core.llm.client import ChatClient  # noqa: E402
from desktop_chat.core.model.message import DocumentRef  # noqa: E402

TARGET_RETRIEVAL_MS, TARGET_GAP_MS = 50.0, 33.0
PROMPTS = [FACT_QUESTION, "Which vessel left the harbour after the customs inspection?",
           "Summarise the tariff schedule for containers", "What does the pilot do at the "
           "berth?", "How is cargo moved from the quay to the warehouse?"]


def extraction(pdf: Path, rounds: int) -> dict[str, float]:
    times, pages = [], 0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "h.sqlite3") as store:
            start = time.perf_counter()
            ref = documents.read_document(store, pdf)
            times.append(time.perf_counter() - start)
            pages = ref.pages or 0
    return {"pages": pages, "median_s": statistics.median(times), "min_s": min(times)}


def retrieval(index_pages: int, prompts: int, rounds: int) -> dict[str, float]:
    per_doc = max(1, index_pages // 4)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "h.sqlite3") as store:
        refs = []
        for number in range(4):
            sections = [Section(f"Report {number}, page {page}. {filler(number * 10_000 + page)}",
                                page) for page in range(1, per_doc + 1)]
            sha = f"{number:064x}"
            ref = DocumentRef(sha, f"report {number}.pdf", "pdf", 1, per_doc,
                              estimate_tokens(whole_text(sections)))
            refs.append(store.add_document(StoredDocument.of(ref, sections)))
        budget = documents.budget_for(8192, documents.DEFAULT_SHARE)
        medians, p95s = [], []
        for _ in range(rounds):
            times = []
            for n in range(prompts):
                start = time.perf_counter()
                chosen = documents.choose(store, refs, PROMPTS[n % len(PROMPTS)], budget)
                documents.context_text(store, chosen)
                times.append((time.perf_counter() - start) * 1000)
            medians.append(statistics.median(times))
            p95s.append(statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0])
        chunks = store._rows("SELECT count(*) FROM document_chunks")[0][0]
    return {"pages": per_doc * 4, "passages": chunks, "median_ms": statistics.median(medians),
            "p95_ms": statistics.median(p95s)}


async def _attach(window: object, pdf: Path) -> tuple[dict[str, float], float]:
    strip = window.documentStrip  # type: ignore[attr-defined]
    meter = GapMeter()
    meter.start()
    start = time.perf_counter()
    window._attach_files([str(pdf)])  # type: ignore[attr-defined]
    while not strip.documents:
        await asyncio.sleep(0.001)
    spent = time.perf_counter() - start
    return meter.stop(), spent


async def _idle(seconds: float) -> dict[str, float]:
    meter = GapMeter()
    meter.start()
    await asyncio.sleep(seconds)
    return meter.stop()


def window_gaps(app: QApplication, loop: asyncio.AbstractEventLoop, pdf: Path, rounds: int
                ) -> dict[str, float]:
    busy, idle, spent = [], [], []
    first = 0.0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            window = create_main_window(["--data-dir", tmp, "--base-url",
                                         "http://127.0.0.1:9/v1", "--model", "test-model"])
            window.resize(1000, 720)
            window.show()
            settle_startup_objects()
            loop.run_until_complete(asyncio.sleep(0.3))  # start-up work (model list) ends
            try:
                gaps, seconds = loop.run_until_complete(_attach(window, pdf))
                busy.append(gaps["max_gap_ms"])
                first = first or gaps["max_gap_ms"]
                spent.append(seconds)
                idle.append(loop.run_until_complete(_idle(seconds))["max_gap_ms"])
            finally:
                loop.run_until_complete(window.controller.aclose())
                window.close()
                window.deleteLater()
    return {"busy_max_gap_ms": statistics.median(busy), "worst_busy_gap_ms": max(busy),
            "first_gap_ms": first,
            "idle_max_gap_ms": statistics.median(idle), "ready_s": statistics.median(spent)}


def _index(store: Store, index_pages: int) -> list[DocumentRef]:
    per_doc = max(1, index_pages // 4)
    refs = []
    for number in range(4):
        sections = [Section(f"Report {number}, page {page}. {filler(number * 10_000 + page)}",
                            page) for page in range(1, per_doc + 1)]
        ref = DocumentRef(f"{number:064x}", f"report {number}.pdf", "pdf", 1, per_doc,
                          estimate_tokens(whole_text(sections)))
        refs.append(store.add_document(StoredDocument.of(ref, sections)))
    return refs


async def _hybrid(store: Store, refs: list[DocumentRef], base_url: str, prompts: int,
                  rounds: int) -> dict[str, float]:
    client = ChatClient(Endpoint(base_url, "sk-bench", 30.0, 60.0))
    retrieval = HybridRetrieval(store, client, "test-embedding")
    shas = [r.sha256 for r in refs]
    budget = documents.budget_for(8192, documents.DEFAULT_SHARE)
    try:
        start = time.perf_counter()
        embedded = await retrieval.embed_documents(shas)
        embed_all = time.perf_counter() - start
        local, network, first = [], [], 0.0
        for round_ in range(rounds):
            times = []
            for n in range(prompts):
                prompt = PROMPTS[n % len(PROMPTS)]
                start = time.perf_counter()
                [query] = await client.embed(retrieval.model, [prompt])
                network.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                found = retrieval.rank(shas, prompt, query, SEARCH_LIMIT)
                chosen = documents.choose(store, refs, prompt, budget, found=found)
                documents.context_text(store, chosen)
                spent = (time.perf_counter() - start) * 1000
                if round_ == n == 0:
                    first = spent  # the passages' vectors read from the history
                else:
                    times.append(spent)
            local += times
    finally:
        retrieval.close()
        await client.aclose()
    return {"embedded": embedded, "embed_all_s": embed_all, "first_ms": first,
            "median_ms": statistics.median(local),
            "p95_ms": statistics.quantiles(local, n=20)[18] if len(local) > 1 else local[0],
            "embed_ms": statistics.median(network)}


def hybrid_retrieval(loop: asyncio.AbstractEventLoop, index_pages: int, prompts: int,
                     rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "h.sqlite3") as store, \
            LoopbackServer() as server:
        refs = _index(store, index_pages)
        return loop.run_until_complete(_hybrid(store, refs, server.base_url, prompts, rounds))


LEGACY_TEXT = ("Café crème brûlée, naïve façade — “quoted”. " * 4000).encode("cp1252")


def legacy_probe(mode: str) -> int:
    """One fresh window (this is a child process): start-up's background loading with or
    without warming the encoding detection, then a cp1252 file attached; prints JSON."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_application(app)
    loop = create_event_loop(app)
    with tempfile.TemporaryDirectory() as tmp:
        legacy = Path(tmp) / "legacy.txt"
        legacy.write_bytes(LEGACY_TEXT)
        window = create_main_window(["--data-dir", tmp, "--base-url",
                                     "http://127.0.0.1:9/v1", "--model", "test-model"])
        if mode == "cold":  # as before: nothing warms it
            window.documentReader.warm_up = lambda: _done(loop)  # type: ignore[method-assign]
        window.resize(1000, 720)
        meter = GapMeter()
        meter.start()
        window.show()
        settle_startup_objects()
        loop.run_until_complete(asyncio.sleep(1.5))  # start-up's background loading ends
        startup = meter.stop()
        try:
            gaps, seconds = loop.run_until_complete(_attach(window, legacy))
        finally:
            loop.run_until_complete(window.controller.aclose())
            window.close()
    print(json.dumps({"gap_ms": gaps["max_gap_ms"], "read_ms": seconds * 1000,
                      "startup_gap_ms": startup["max_gap_ms"]}), flush=True)
    loop.close()  # its worker threads end before the process does
    return 0


def _done(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    future: asyncio.Future[None] = loop.create_future()
    future.set_result(None)
    return future


def legacy_gaps(rounds: int) -> dict[str, dict[str, float]]:
    found: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    for _ in range(rounds):
        for mode in found:  # back to back
            child = subprocess.run([sys.executable, __file__, "--legacy-probe", mode],
                                   capture_output=True, text=True, env=env, timeout=120,
                                   check=True)
            found[mode].append(json.loads(child.stdout.strip().splitlines()[-1]))
    return {mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for mode, runs in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="pages of the PDF read")
    parser.add_argument("--index-pages", type=int, default=1000,
                        help="pages indexed for the retrieval latency")
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--legacy-probe", choices=("cold", "warm"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.legacy_probe:
        return legacy_probe(args.legacy_probe)
    print(machine_facts())
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_application(app)
    loop = create_event_loop(app)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = make_pdf(Path(tmp) / "report.pdf", pages=args.pages,
                       fact_page=max(1, args.pages * 4 // 5))
        # the window first, in a process that has not imported PDFium yet: the first round
        # is the session's first attach (it pays the import), reported apart
        gaps = window_gaps(app, loop, pdf, args.rounds)
        read = extraction(pdf, args.rounds)
        print(f"extract + index a {read['pages']}-page PDF ({pdf.stat().st_size // 1024} KB): "
              f"median {read['median_s'] * 1000:.0f} ms, best {read['min_s'] * 1000:.0f} ms")
        found = retrieval(args.index_pages, args.prompts, args.rounds)
        verdict = "OK" if found["median_ms"] <= TARGET_RETRIEVAL_MS else "OVER TARGET"
        print(f"retrieval over {found['pages']} pages ({found['passages']} passages): "
              f"median {found['median_ms']:.2f} ms, p95 {found['p95_ms']:.2f} ms per prompt "
              f"(target <= {TARGET_RETRIEVAL_MS:.0f} ms: {verdict})")
        hybrid = hybrid_retrieval(loop, args.index_pages, args.prompts, args.rounds)
        verdict = "OK" if hybrid["median_ms"] <= TARGET_RETRIEVAL_MS else "OVER TARGET"
        print(f"hybrid retrieval (BM25 + embeddings) over {found['pages']} pages: median "
              f"{hybrid['median_ms']:.2f} ms, p95 {hybrid['p95_ms']:.2f} ms per prompt, first "
              f"prompt {hybrid['first_ms']:.1f} ms (reads the vectors) (target <= "
              f"{TARGET_RETRIEVAL_MS:.0f} ms: {verdict}); plus the prompt's embed call "
              f"(loopback) median {hybrid['embed_ms']:.1f} ms; embedding all "
              f"{hybrid['embedded']:.0f} passages once: {hybrid['embed_all_s']:.2f} s")
        legacy = legacy_gaps(args.rounds)
        cold, warm = legacy["cold"], legacy["warm"]
        print(f"first cp1252 text file in a fresh window, max loop gap while read: "
              f"{warm['gap_ms']:.1f} ms with encoding detection warmed at start-up, "
              f"{cold['gap_ms']:.1f} ms without (read in {warm['read_ms']:.0f} ms vs "
              f"{cold['read_ms']:.0f} ms); start-up background loading's max gap "
              f"{warm['startup_gap_ms']:.1f} ms with the warm-up, "
              f"{cold['startup_gap_ms']:.1f} ms without; medians of {args.rounds} fresh "
              f"process(es) each, alternated")
        verdict = "OK" if gaps["busy_max_gap_ms"] <= TARGET_GAP_MS else "OVER TARGET"
        print(f"window loop while reading it (drop to chip ready, median "
              f"{gaps['ready_s'] * 1000:.0f} ms): max gap {gaps['busy_max_gap_ms']:.1f} ms "
              f"(worst round {gaps['worst_busy_gap_ms']:.1f} ms; first attach of the session "
              f"{gaps['first_gap_ms']:.1f} ms; idle window, same time: "
              f"{gaps['idle_max_gap_ms']:.1f} ms) (target <= {TARGET_GAP_MS:.0f} ms: "
              f"{verdict})")
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
