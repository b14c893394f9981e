"""Issue 22's attacks on one tenant's work, while a second client polls `/healthz` every 50 ms:
the worst `/healthz` latency and the API process's peak RSS during each, on SQLite and
PostgreSQL. Prints a table.

    python bench/attacks.py                       # both databases
    python bench/attacks.py --backends sqlite

The attacks: one Responses message of 300,000 `input_text` parts (9.9 MB) and of 1,000,000
(37 MB); a response on a conversation of 100,000 items (written straight into the database),
with `truncation: auto` and with it disabled; `input_tokens` on that conversation; and, for
comparison, the largest body the bounds allow (2,048 messages of 4 parts: 8,192 parts in all,
with 2,048 items the most a request may carry), which is parsed and validated whole. The model is
the test suite's scripted server, reporting (as vLLM does) a 32,768-token window. Targets:
`/healthz` < 250 ms, RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.responses.test_long_conversation import write_items  # noqa: E402
from tests.support.pg import drop_database, start_postgres  # noqa: E402
from tests.support.scripted_model import Reply, ScriptedModel  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

API_KEY = "sk-bench-attacks-0123456789"
PROJECT = "tuned"  # the project `write_items` writes for
PART = {"type": "input_text", "text": "p"}
WINDOW = 32_768


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Poller:
    """`/healthz` every 50 ms on its own connection; the worst latency and the peak RSS."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.worst = 0.0
        self.peak_mb = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while True:
                started = time.perf_counter()
                http.get("/healthz")
                self.worst = max(self.worst, time.perf_counter() - started)
                self.peak_mb = max(self.peak_mb, _rss_mb(self.pid))
                self.count += 1
                if self._stop.wait(0.05):
                    return


def _parts_body(parts: int) -> bytes:
    part = json.dumps(PART)
    return (
        '{"model":"gpt-4o","input":[{"role":"user","content":[' + ",".join([part] * parts) + "]}]}"
    ).encode()


def _attacks(conversation: str) -> list[tuple[str, str, Callable[[], bytes]]]:
    def body(**fields: object) -> Callable[[], bytes]:
        return lambda: json.dumps({"model": "gpt-4o", **fields}).encode()

    most = [{"role": "user", "content": [PART] * 4}] * 2048
    return [
        ("300k parts (9.9 MB)", "/v1/responses", lambda: _parts_body(300_000)),
        ("1M parts (37 MB)", "/v1/responses", lambda: _parts_body(1_000_000)),
        (
            "response, 100k items, auto",
            "/v1/responses",
            body(conversation=conversation, input="bench", truncation="auto"),
        ),
        (
            "response, 100k items, disabled",
            "/v1/responses",
            body(conversation=conversation, input="bench"),
        ),
        (
            "input_tokens, 100k items, auto",
            "/v1/responses/input_tokens",
            body(conversation=conversation, input="bench", truncation="auto"),
        ),
        (
            "input_tokens, 100k items, disabled",
            "/v1/responses/input_tokens",
            body(conversation=conversation, input="bench"),
        ),
        (
            "input_tokens, 100k items, no model",
            "/v1/responses/input_tokens",
            lambda: json.dumps(
                {"conversation": conversation, "input": "bench", "truncation": "auto"}
            ).encode(),
        ),
        ("largest allowed body", "/v1/responses/input_tokens", body(input=most)),
    ]


def run(backend: str) -> list[tuple[str, int, float, float, float, int]]:
    work = Path(tempfile.mkdtemp(prefix=f"attacks-{backend}-"))
    model = ScriptedModel(model_info={"gpt-4o": {"max_model_len": WINDOW}}).start()
    model.script("bench", Reply(text="ok"))
    url = (
        start_postgres(ROOT / ".tmp" / "pg")
        if backend == "postgres"
        else f"sqlite+aiosqlite:///{work / 'a.db'}"
    )
    env = {
        "ASSISTANTD_DATABASE_URL": url,
        "ASSISTANTD_DATA_DIR": str(work / "data"),
        "ASSISTANTD_API_KEYS": f"{PROJECT}:{API_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_EMBEDDED_WORKER": "true",
        "ASSISTANTD_LOG_LEVEL": "WARNING",
    }
    server = LiveServer(env, work / "server.log").start()
    rows = []
    try:
        assert server.proc is not None
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
            conversation = http.post("/v1/conversations", json={}).json()["id"]
            write_items(url, work / "data", conversation)
            for name, path, make in _attacks(conversation):
                content = make()
                with Poller(server.url, server.proc.pid) as poller:
                    started = time.perf_counter()
                    status = http.post(path, content=content).status_code
                    elapsed = time.perf_counter() - started
                    time.sleep(0.2)  # a probe or two after the answer
                rows.append((name, status, elapsed, poller.worst, poller.peak_mb, poller.count))
                print(f"  {backend}: {name}: {status} in {elapsed:.2f} s", flush=True)
    finally:
        server.stop()
        model.stop()
        if backend == "postgres":
            drop_database(url)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for backend in args.backends:
        rows = run(backend)
        print(f"\n{backend}")
        print(f"{'attack':38} {'status':>6} {'answer':>8} {'/healthz max':>13} {'peak RSS':>9}")
        for name, status, elapsed, worst, peak, count in rows:
            print(
                f"{name:38} {status:>6} {elapsed:>7.2f}s {worst * 1000:>10.0f} ms "
                f"{peak:>6.0f} MB  ({count} probes)"
            )


if __name__ == "__main__":
    main()
