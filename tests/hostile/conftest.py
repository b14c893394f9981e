"""A live server of its own for the hostile-input suite, with small limits to hit quickly.

Every test gets `attack`: the data written before it (an assistant, a thread with a message)
and a probe that calls `/healthz` every 20 ms while the test runs. After the test the probe must
have had its answers within 100 ms, the server's memory (its process and, on PostgreSQL, the
worker's) must have stayed within the budget, and the data must read back unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STATIC_KEY, is_postgres
from tests.sandbox.conftest import fresh_database
from tests.support.server import LiveServer

MAX_REQUEST_BYTES = 1024 * 1024
PARSER_MEMORY_MB = 384
PARSER_TIMEOUT_SECONDS = 10
# What the server's resident memory may grow by during one attack (its baseline, the embedded
# embedder and a warm heap included, is measured before the first attack): once the attack is
# over (given a few seconds to settle), and at its peak while it lasts (sampled with /healthz).
RSS_GROWTH_BUDGET_MB = 200
RSS_PEAK_BUDGET_MB = 1024
HEALTHZ_LIMIT_SECONDS = 0.1


@dataclass
class Hostile:
    """The server under attack: its URL, a key, and its processes."""

    server: LiveServer
    pids: list[int]
    baseline_rss_mb: float
    headers: dict[str, str] = field(
        default_factory=lambda: {"Authorization": f"Bearer {STATIC_KEY}"}
    )

    @property
    def url(self) -> str:
        return self.server.url

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/v1", headers=self.headers, timeout=60)

    def rss_mb(self) -> float:
        return sum(_rss_kb(pid) for pid in self.pids) / 1024


@pytest.fixture(scope="package")  # stopped when the suite leaves tests/hostile
def hostile(server_env: dict[str, str], work_dir: Path) -> Iterator[Hostile]:
    env = {
        **server_env,
        "ASSISTANTD_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "ASSISTANTD_INGEST_PARSER_MEMORY_MB": str(PARSER_MEMORY_MB),
        "ASSISTANTD_INGEST_PARSER_TIMEOUT_SECONDS": str(PARSER_TIMEOUT_SECONDS),
    }
    # A deployment of its own (on PostgreSQL a database of its own on the suite's server): its
    # memory and /healthz measure the attacks, not work its worker took over from other tests.
    env["ASSISTANTD_DATA_DIR"] = str(work_dir / "hostile-data")
    env["ASSISTANTD_DATABASE_URL"] = fresh_database(env["ASSISTANTD_DATABASE_URL"], work_dir)
    live = LiveServer(env, work_dir / "hostile-server.log").start()
    worker = None
    if is_postgres(env["ASSISTANTD_DATABASE_URL"]):
        worker = LiveServer(env, work_dir / "hostile-worker.log", command="worker").start()
    assert live.proc is not None
    pids = [live.proc.pid]
    if worker is not None and worker.proc is not None:
        pids.append(worker.proc.pid)
    probe = Hostile(live, pids, 0.0)
    _warm_up(probe)
    probe.baseline_rss_mb = probe.rss_mb()
    yield probe
    if worker is not None:
        worker.stop()
    live.stop()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _warm_up(hostile: Hostile) -> None:
    """Load what a first request, run and ingestion load (the embedder), so the baseline
    includes it."""
    with hostile.http() as http:
        file = http.post(
            "/files", files={"file": ("w.txt", b"warm up")}, data={"purpose": "assistants"}
        )
        store = http.post("/vector_stores", json={"file_ids": [file.json()["id"]]}).json()
        deadline = time.monotonic() + 120
        while http.get(f"/vector_stores/{store['id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline, "warm-up ingestion did not finish"
            time.sleep(0.1)


class HealthProbe:
    """Calls /healthz every 20 ms on its own connection, recording each answer's latency."""

    def __init__(self, url: str, rss_mb: Callable[[], float]) -> None:
        self.url = url
        self.rss_mb = rss_mb
        self.peak_rss_mb = 0.0
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while True:  # at least once, however short the attack
                started = time.perf_counter()
                try:
                    status = http.get("/healthz").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                else:
                    if status != 200:
                        self.failures.append(f"status {status}")
                self.latencies.append(time.perf_counter() - started)
                self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
                if self._stop.wait(0.02):
                    return

    def check(self) -> None:
        assert not self.failures, self.failures
        assert self.latencies, "the probe never ran"
        # The machine's 2 cores are shared (other suites, the parser child, the embedder): a
        # few slow answers are the scheduler's. 95 in 100 answer within the limit, and none
        # may take ten times as long.
        ranked = sorted(self.latencies)
        typical = ranked[int(len(ranked) * 0.95)] if len(ranked) >= 20 else ranked[0]
        worst = ranked[-1]
        summary = (
            f"/healthz during the attack: p95 {typical * 1000:.0f} ms, max {worst * 1000:.0f} ms "
            f"of {len(ranked)} probes"
        )
        assert typical < HEALTHZ_LIMIT_SECONDS, summary
        assert worst < 10 * HEALTHZ_LIMIT_SECONDS, summary


@dataclass
class Attack:
    hostile: Hostile
    http: httpx.Client
    before: dict[str, Any]
    probe: HealthProbe


@pytest.fixture
def attack(hostile: Hostile) -> Iterator[Attack]:
    with hostile.http() as http:
        assistant = http.post("/assistants", json={"model": "gpt-4o", "name": "before"}).json()
        thread = http.post(
            "/threads", json={"messages": [{"role": "user", "content": "before the attack"}]}
        ).json()
        messages = http.get(f"/threads/{thread['id']}/messages").json()
        before = {"assistant": assistant, "thread": thread, "messages": messages}
        with HealthProbe(hostile.url, hostile.rss_mb) as probe:
            yield Attack(hostile, http, before, probe)
        probe.check()
        peak = probe.peak_rss_mb - hostile.baseline_rss_mb
        assert peak < RSS_PEAK_BUDGET_MB, f"the server grew by {peak:.0f} MB at its peak"
        deadline = time.monotonic() + 10
        while (growth := hostile.rss_mb() - hostile.baseline_rss_mb) >= RSS_GROWTH_BUDGET_MB:
            assert time.monotonic() < deadline, f"the server stayed {growth:.0f} MB larger"
            time.sleep(0.2)
        assert http.get(f"/assistants/{assistant['id']}").json() == assistant
        assert http.get(f"/threads/{thread['id']}").json() == thread
        assert http.get(f"/threads/{thread['id']}/messages").json() == messages


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "invalid_request_error", body
    return dict(body["error"])
