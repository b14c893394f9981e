"""File search benchmarks: ingestion throughput against the raw embedder, search latency at scale,
and the server's memory while it ingests a 1,000-page PDF. Prints a table per database.

    python bench/file_search.py                        # SQLite and PostgreSQL
    python bench/file_search.py --backends sqlite --pdf-pages 200

Each database gets one `assistantd serve` process running the worker in-process (so the memory
measured is the ingesting process). Measurements:

- ingestion: a batch of text files (auto chunking, 800/400) from attach to `in_progress == 0`,
  as word pieces embedded per second; with the server idle, just before and just after, this
  process embeds the very same chunks with the same embedder (`LocalEmbedder.embed_ids`): the
  raw throughput is the mean of the two (which cancels drift in the machine's load). Target:
  ingestion >= 80% of raw.
- search: a store filled with synthetic chunks (random unit vectors, text drawn from a Zipf
  vocabulary of 5,000 words) written straight into the index, 10,000 on SQLite and 100,000 on
  PostgreSQL (then ANALYZE, as autovacuum would); then sequential `POST .../search` with 2-5
  word queries drawn from the same distribution (each embedded by the server), after one warm-up
  search. Target: p95 < 50 ms. The server's CPU time per search is printed too: unlike
  latency, it does not depend on what else the machine runs.
- memory: the server's RSS sampled every 0.2 s while it ingests a 1,000-page PDF (made here);
  flat means no growth: the highest RSS of the last quarter of the ingestion is within 32 MiB
  of the highest of the first quarter (the embedder's working memory comes and goes with each
  batch from the start; what must not happen is growth with the pages read).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pg import drop_database  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402
from tests.vector_stores.documents import make_pdf  # noqa: E402

from assistantd.db.engine import make_engine, make_sessionmaker  # noqa: E402
from assistantd.settings import Settings  # noqa: E402
from assistantd.vector_stores import index, repository  # noqa: E402
from assistantd.vector_stores.chunking import Chunk, chunk_texts  # noqa: E402
from assistantd.vector_stores.embeddings import LocalEmbedder  # noqa: E402

API_KEY = "sk-bench-file-search-0123456789"
PROJECT = "bench"
MiB = 1024 * 1024
TARGET_INGEST_RATIO = 0.80
TARGET_SEARCH_P95_MS = 50.0
TARGET_RSS_GROWTH_MIB = 32.0
SEARCH_CHUNKS = {"sqlite": 10_000, "postgres": 100_000}
_RNG = random.Random(1)
WORDS = sorted(
    {
        "".join(_RNG.choice("bcdfghklmnprstvz") + _RNG.choice("aeiou") for _ in range(3))
        for _ in range(6000)
    }
)[:5000]
TOPICS = (
    "The committee reviewed the annual budget and approved funding for the new library wing. "
    "Engineers replaced the worn bearings in the turbine after the vibration alarm triggered. "
    "Migrating birds rest on the island for a week before crossing the open sea. "
    "The recipe calls for two cups of flour, a pinch of salt and warm water. "
    "Customers can return unopened items within thirty days for a full refund. "
)


@dataclass
class Result:
    backend: str
    ingest_pieces: int = 0
    ingest_seconds: float = 0.0
    raw_seconds: float = 0.0
    search_chunks: int = 0
    search_ms: list[float] = field(default_factory=list)
    search_cpu_ms: float = 0.0  # server CPU time per search (all threads): load-independent
    load_average: float = 0.0  # the machine's 1-minute load average during the searches
    cold_search_ms: float = 0.0
    pdf_pages: int = 0
    pdf_seconds: float = 0.0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    rss_first_quarter: int = 0  # highest RSS in the first quarter of the PDF's ingestion
    rss_last_quarter: int = 0  # ... and in the last quarter: flat means no growth between them
    raw_runs: list[float] = field(default_factory=list)

    @property
    def ingest_rate(self) -> float:
        return self.ingest_pieces / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def raw_rate(self) -> float:
        return self.ingest_pieces / self.raw_seconds if self.raw_seconds else 0.0

    def p(self, q: float) -> float:
        ordered = sorted(self.search_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def corpus(files: int, words_per_file: int) -> list[tuple[str, str]]:
    rng = random.Random(11)
    sentences = [s.strip() + "." for s in TOPICS.split(".") if s.strip()]
    docs = []
    for number in range(files):
        parts = []
        while sum(len(p.split()) for p in parts) < words_per_file:
            sentence = rng.choice(sentences)
            parts.append(sentence.replace("the", rng.choice(["the", "a", "our", "their"]), 1))
            if rng.random() < 0.15:
                parts.append("\n\n")
        docs.append((f"doc-{number}.txt", " ".join(parts)))
    return docs


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=f"{url}/v1", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120
        )

    def upload(self, name: str, data: bytes) -> str:
        response = self.http.post(
            "/files", files={"file": (name, data)}, data={"purpose": "assistants"}
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        data: dict[str, object] = response.json()
        return data

    def get(self, path: str) -> dict[str, object]:
        response = self.http.get(path)
        response.raise_for_status()
        data: dict[str, object] = response.json()
        return data

    def wait_batch(self, store_id: str, batch_id: str, timeout: float = 3600) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.get(f"/vector_stores/{store_id}/file_batches/{batch_id}")
            if batch["file_counts"]["in_progress"] == 0:  # type: ignore[index]
                return batch
            time.sleep(0.1)
        raise TimeoutError(batch_id)


def measure_ingestion(api: Api, result: Result, files: int, words: int) -> None:
    docs = corpus(files, words)
    file_ids = [api.upload(name, body.encode()) for name, body in docs]
    store = api.post("/vector_stores", {"name": "ingest"})
    # Warm up: the first file loads the model; keep it out of the timing.
    warm = api.post(
        f"/vector_stores/{store['id']}/file_batches",
        {"file_ids": [api.upload("warm.txt", b"warm up the embedder " * 50)]},
    )
    api.wait_batch(str(store["id"]), str(warm["id"]))
    before = LocalEmbedder()
    before_chunks = [
        c for _, body in docs for c in chunk_texts(before.tokenizer, [body], {"type": "auto"})
    ]
    before.embed_ids([before_chunks[0].ids])
    result.raw_runs.append(raw_seconds(before, before_chunks))
    started = time.monotonic()
    batch = api.post(f"/vector_stores/{store['id']}/file_batches", {"file_ids": file_ids})
    done = api.wait_batch(str(store["id"]), str(batch["id"]))
    result.ingest_seconds = time.monotonic() - started
    assert done["file_counts"]["completed"] == files, done  # type: ignore[index]

    embedder = LocalEmbedder()
    chunks: list[Chunk] = []
    for _, body in docs:
        chunks.extend(chunk_texts(embedder.tokenizer, [body], {"type": "auto"}))
    result.ingest_pieces = sum(c.tokens for c in chunks)
    embedder.embed_ids([chunks[0].ids])  # load the model outside the timing
    # Raw throughput just before and just after the ingestion: the mean cancels load drift.
    result.raw_runs.append(raw_seconds(embedder, chunks))
    result.raw_seconds = statistics.mean(result.raw_runs)


def raw_seconds(embedder: LocalEmbedder, chunks: list[Chunk]) -> float:
    started = time.monotonic()
    for start in range(0, len(chunks), 8):
        embedder.embed_ids([c.ids for c in chunks[start : start + 8]])
    return time.monotonic() - started


async def fill_store(
    settings: Settings, store_id: str, file_id: str, count: int, dims: int = 384
) -> None:
    rng = np.random.default_rng(5)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    engine = make_engine(settings)
    try:
        sessions = make_sessionmaker(engine, write=True)
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            vectors = rng.standard_normal((size, dims)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunks = []
            for offset in range(size):
                words = rng.choice(len(WORDS), size=120, p=weights)
                body = " ".join(WORDS[w] for w in words)
                seq = start + offset + 1000
                chunks.append(Chunk(seq=seq, text=body, ids=[0] * 160, start=0, end=len(body)))
            async with sessions() as session:
                await index.add_chunks(session, store_id, file_id, "bench", chunks, vectors)
                await session.commit()
        async with sessions() as session:
            await repository.bump_generation(session, [store_id])
            await session.commit()
        if not settings.is_sqlite:
            # What autovacuum does after a bulk load: keyword search reads the statistics.
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE vector_store_chunks"))
                await conn.commit()
    finally:
        await engine.dispose()


def measure_search(
    api: Api, server: LiveServer, settings: Settings, result: Result, chunks: int, queries: int
) -> None:
    store = api.post("/vector_stores", {"name": "search"})
    store_id = str(store["id"])
    seed = api.upload("seed.txt", b"seed document for the search benchmark")
    batch = api.post(f"/vector_stores/{store_id}/file_batches", {"file_ids": [seed]})
    api.wait_batch(store_id, str(batch["id"]))
    asyncio.run(fill_store(settings, store_id, seed, chunks))
    result.search_chunks = chunks + 1
    rng = random.Random(9)
    started = time.monotonic()
    api.post(f"/vector_stores/{store_id}/search", {"query": "warm up query"})
    result.cold_search_ms = (time.monotonic() - started) * 1000
    assert server.proc is not None
    cpu_before = cpu_seconds(server.proc.pid)
    result.load_average = os.getloadavg()[0]
    zipf = [1.0 / (rank + 1) for rank in range(len(WORDS))]
    for _ in range(queries):
        # Words drawn as the text draws them: mostly common ones, now and then a rare one.
        query = " ".join(rng.choices(WORDS, weights=zipf, k=rng.randint(2, 5)))
        started = time.monotonic()
        body = {"query": query, "max_num_results": 10}
        page = api.post(f"/vector_stores/{store_id}/search", body)
        result.search_ms.append((time.monotonic() - started) * 1000)
        assert page["data"], page
    result.search_cpu_ms = (cpu_seconds(server.proc.pid) - cpu_before) * 1000 / queries
    result.load_average = max(result.load_average, os.getloadavg()[0])


def measure_pdf(api: Api, server: LiveServer, result: Result, pages: int) -> None:
    rng = random.Random(2)
    sentences = [s.strip() + "." for s in TOPICS.split(".") if s.strip()]
    pdf = make_pdf(
        [[f"Page {n + 1}.", rng.choice(sentences), rng.choice(sentences)] for n in range(pages)]
    )
    file_id = api.upload("big.pdf", pdf)
    store = api.post("/vector_stores", {"name": "pdf"})
    assert server.proc is not None
    pid = server.proc.pid
    result.pdf_pages = pages
    result.rss_before = rss(pid)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss(pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    batch = api.post(f"/vector_stores/{store['id']}/file_batches", {"file_ids": [file_id]})
    done = api.wait_batch(str(store["id"]), str(batch["id"]))
    result.pdf_seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    assert done["file_counts"]["completed"] == 1, done  # type: ignore[index]
    quarter = max(1, len(samples) // 4)
    result.rss_peak = max(samples)
    result.rss_first_quarter = max(samples[:quarter])
    result.rss_last_quarter = max(samples[-quarter:])
    result.rss_after = rss(pid)


def database_for(backend: str, work: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{work / 'bench.db'}"
    from tests.support.pg import start_postgres

    return start_postgres(ROOT / ".tmp" / "bench-pg")


def bench_backend(backend: str, args: argparse.Namespace) -> Result:
    result = Result(backend)
    with tempfile.TemporaryDirectory(prefix=f"bench-fs-{backend}-") as tmp:
        work = Path(tmp)
        url = database_for(backend, work)
        env = {
            "ASSISTANTD_DATA_DIR": str(work / "data"),
            "ASSISTANTD_DATABASE_URL": url,
            "ASSISTANTD_API_KEYS": f"{PROJECT}:{API_KEY}",
            "ASSISTANTD_EMBEDDED_WORKER": "true",
            "ASSISTANTD_INGEST_POLL_SECONDS": "0.1",
            # No chat model is used; naming a backend keeps an embedded one from loading.
            "ASSISTANTD_MODEL_BASE_URL": "http://127.0.0.1:9/v1",
        }
        server = LiveServer(env, work / "server.log").start()
        try:
            api = Api(server.url)
            settings = Settings(database_url=url, data_dir=work / "data")
            print(f"[{backend}] ingestion ...", flush=True)
            measure_ingestion(api, result, args.files, args.words)
            print(f"[{backend}] memory while ingesting a {args.pdf_pages}-page PDF ...", flush=True)
            measure_pdf(api, server, result, args.pdf_pages)
            chunks = args.search_chunks or SEARCH_CHUNKS[backend]
            print(f"[{backend}] search over {chunks} chunks ...", flush=True)
            measure_search(api, server, settings, result, chunks, args.queries)
        except Exception:
            print(server.log_tail(), file=sys.stderr)
            raise
        finally:
            server.stop()
            drop_database(url)
    return result


def print_table(results: list[Result]) -> bool:
    ok_all = True
    print()
    print(f"{'measurement':<48} {'value':>16} {'target':>14}  ok")
    for r in results:
        ratio = r.ingest_rate / r.raw_rate if r.raw_rate else 0.0
        growth = (r.rss_last_quarter - r.rss_first_quarter) / MiB
        rows = [
            (f"[{r.backend}] ingestion (word pieces/s)", f"{r.ingest_rate:,.0f}", "", None),
            (
                f"[{r.backend}] raw embedder, before / after (pieces/s)",
                " / ".join(f"{r.ingest_pieces / sec:,.0f}" for sec in r.raw_runs),
                "",
                None,
            ),
            (f"[{r.backend}] raw embedder, mean (word pieces/s)", f"{r.raw_rate:,.0f}", "", None),
            (
                f"[{r.backend}] ingestion / raw",
                f"{ratio:.0%}",
                f">= {TARGET_INGEST_RATIO:.0%}",
                ratio >= TARGET_INGEST_RATIO,
            ),
            (f"[{r.backend}] search: chunks in the store", f"{r.search_chunks:,}", "", None),
            (f"[{r.backend}] search: first (cold) ms", f"{r.cold_search_ms:.1f}", "", None),
            (f"[{r.backend}] search p50 ms", f"{r.p(0.50):.1f}", "", None),
            (
                f"[{r.backend}] search p95 ms",
                f"{r.p(0.95):.1f}",
                f"< {TARGET_SEARCH_P95_MS:.0f}",
                r.p(0.95) < TARGET_SEARCH_P95_MS,
            ),
            (f"[{r.backend}] search p99 ms", f"{r.p(0.99):.1f}", "", None),
            (f"[{r.backend}] search: server CPU ms per search", f"{r.search_cpu_ms:.1f}", "", None),
            (f"[{r.backend}] machine load average (2 cores)", f"{r.load_average:.1f}", "", None),
            (
                f"[{r.backend}] {r.pdf_pages}-page PDF ingested in (s)",
                f"{r.pdf_seconds:.1f}",
                "",
                None,
            ),
            (
                f"[{r.backend}] RSS before / peak / after (MiB)",
                f"{r.rss_before / MiB:.0f}/{r.rss_peak / MiB:.0f}/{r.rss_after / MiB:.0f}",
                "",
                None,
            ),
            (
                f"[{r.backend}] RSS max, first / last quarter (MiB)",
                f"{r.rss_first_quarter / MiB:.0f}/{r.rss_last_quarter / MiB:.0f}",
                "",
                None,
            ),
            (
                f"[{r.backend}] RSS growth during ingestion (MiB)",
                f"{growth:.1f}",
                f"< {TARGET_RSS_GROWTH_MIB:.0f}",
                growth < TARGET_RSS_GROWTH_MIB,
            ),
        ]
        for name, value, target, ok in rows:
            mark = "" if ok is None else ("yes" if ok else "NO")
            ok_all = ok_all and ok is not False
            print(f"{name:<48} {value:>16} {target:>14}  {mark}")
    return ok_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--files", type=int, default=6, help="text files ingested")
    parser.add_argument("--words", type=int, default=3000, help="words per text file")
    parser.add_argument("--pdf-pages", type=int, default=1000)
    parser.add_argument("--search-chunks", type=int, default=0, help="default: 10k / 100k")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    results = [bench_backend(b.strip(), args) for b in args.backends.split(",") if b.strip()]
    ok = print_table(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
