"""Operations: Prometheus metrics on the API and on a worker's port, request ids, JSON logs with
request and run ids."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import STATIC_KEY, STATIC_PROJECT, is_postgres
from tests.runs.conftest import fresh_database, wait_run, wait_until
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import LiveServer, free_port


@dataclass
class Deployment:
    api: LiveServer
    worker: LiveServer | None
    worker_port: int | None
    client: OpenAI

    @property
    def runs_metrics_url(self) -> str:
        """Where run durations are observed: the process that executes runs."""
        if self.worker_port is None:
            return f"{self.api.url}/metrics"
        return f"http://127.0.0.1:{self.worker_port}/metrics"


@pytest.fixture(scope="module")
def deployment(database_url: str, work_dir: Path, model: ScriptedModel) -> Iterator[Deployment]:
    port = free_port()
    env = {
        "ASSISTANTD_DATA_DIR": str(work_dir / "ops"),
        "ASSISTANTD_DATABASE_URL": fresh_database(database_url, work_dir),
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_MODEL_RETRY_BASE_SECONDS": "0.05",
        "ASSISTANTD_LOG_FORMAT": "json",
        "ASSISTANTD_WORKER_HTTP_PORT": str(port),
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        "ASSISTANTD_POLL_AFTER_MS": "25",
    }
    api = LiveServer(env, work_dir / "ops-api.log").start()
    worker = None
    if is_postgres(database_url):
        worker = LiveServer(env, work_dir / "ops-worker.log", command="worker").start()
        wait_until(
            lambda: _get(f"http://127.0.0.1:{port}/healthz"),
            lambda status: status == 200,
            timeout=90,
            what="the worker's health port",
        )
    client = OpenAI(api_key=STATIC_KEY, base_url=f"{api.url}/v1", max_retries=0)
    try:
        yield Deployment(api, worker, port if worker else None, client)
    finally:
        client.close()
        if worker is not None:
            worker.stop()
        api.stop()


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def samples(url: str) -> dict[str, float]:
    """`name{labels}` -> value, from a Prometheus exposition."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def completed_runs(url: str) -> float:
    return samples(url).get('assistantd_run_duration_seconds_count{status="completed"}', 0.0)


def log_lines(server: LiveServer) -> list[dict[str, object]]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


class TestMetrics:
    def test_api_exposes_its_metrics(self, deployment: Deployment) -> None:
        found = samples(f"{deployment.api.url}/metrics")
        for name in (
            "assistantd_runs_queued",
            "assistantd_runs_executing",
            "assistantd_sandbox_sessions",
            "assistantd_ingestion_backlog",
        ):
            assert name in found, name
        assert any(key.startswith("assistantd_http_requests_total{") for key in found)

    def test_requests_and_run_durations_are_counted(self, deployment: Deployment) -> None:
        client = deployment.client
        before = completed_runs(deployment.runs_metrics_url)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        wait_run(client, thread.id, run.id, {"completed"})
        wait_until(
            lambda: completed_runs(deployment.runs_metrics_url),
            lambda count: count >= before + 1,
            what="the completed run to be observed",
        )
        found = samples(f"{deployment.api.url}/metrics")
        key = (
            'assistantd_http_requests_total{method="POST",'
            'route="/v1/threads/{thread_id}/runs",status="200"}'
        )
        assert found.get(key, 0) >= 1
        assert found["assistantd_runs_queued"] == 0

    def test_worker_port_answers_health(self, deployment: Deployment) -> None:
        if deployment.worker_port is None:
            pytest.skip("SQLite: the run worker lives inside `serve` (its /metrics is the API's)")
        url = f"http://127.0.0.1:{deployment.worker_port}"
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/nope").status_code == 404
        assert "assistantd_runs_executing" in samples(f"{url}/metrics")


class TestRequestIds:
    def test_every_response_carries_one(self, deployment: Deployment) -> None:
        raw = deployment.client.beta.assistants.with_raw_response.list()
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.request_id == raw.headers["x-request-id"]  # the SDK's own accessor

    def test_the_clients_own_is_kept(self, deployment: Deployment) -> None:
        mine = f"trace-{secrets.token_hex(4)}"
        response = httpx.get(
            f"{deployment.api.url}/v1/assistants",
            headers={"Authorization": f"Bearer {STATIC_KEY}", "X-Request-Id": mine},
        )
        assert response.headers["x-request-id"] == mine
        junk = httpx.get(f"{deployment.api.url}/healthz", headers={"X-Request-Id": "a b\tc"})
        assert junk.headers["x-request-id"].startswith("req_")


class TestJsonLogs:
    def test_lines_are_json_with_run_ids(
        self, deployment: Deployment, model: ScriptedModel
    ) -> None:
        marker = f"flaky-{secrets.token_hex(4)}"
        model.script(marker, Reply(status=503), Reply(text="fine"))  # one retry, logged
        client = deployment.client
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        wait_run(client, thread.id, run.id, {"completed"})
        executor = deployment.worker or deployment.api
        retried = wait_until(
            lambda: [
                line
                for line in log_lines(executor)
                if str(line.get("message", "")).startswith("model call failed, retry")
                and line.get("run_id") == run.id
            ],
            bool,
            what="the retry warning of the run, with its run id",
        )
        assert retried[0]["level"] == "WARNING"
        assert retried[0]["logger"] == "assistantd.backends.chat"
        # every line either process wrote is one JSON object
        for server in (deployment.api, deployment.worker):
            if server is not None:
                text = server.log_path.read_text(errors="replace")
                assert all(line.startswith("{") for line in text.splitlines() if line.strip())
