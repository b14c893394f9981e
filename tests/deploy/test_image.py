"""The server/worker image (Dockerfile, or deploy/build-image.sh offline): it starts
`assistantd serve` with its defaults, migrates, and answers a run with the embedded model.

CI builds the image (`make image`) and sets ASSISTANTD_REQUIRE_SERVER_IMAGE=1; elsewhere the test
runs when the image is there."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from tests.runs.conftest import TERMINAL, wait_until
from tests.support.server import free_port

IMAGE = os.environ.get("ASSISTANTD_IMAGE", "assistantd:latest")
KEY = "sk-image-test"


def image_present() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    found = subprocess.run([docker, "image", "inspect", IMAGE], capture_output=True)
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not image_present() and os.environ.get("ASSISTANTD_REQUIRE_SERVER_IMAGE") != "1",
    reason=f"no {IMAGE} image: build it with `make image`",
)


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    assert image_present(), f"{IMAGE} was not built (make image)"
    port = free_port()
    name = f"assistantd-test-{port}"
    # Host networking: this machine's engine has no bridge; the server listens on loopback.
    subprocess.run(
        [
            "docker", "run", "-d", "--rm", "--name", name, "--network", "host",
            "-e", f"ASSISTANTD_API_KEYS={KEY}",
            "-e", "ASSISTANTD_LOCAL_MODEL_MAX_OUTPUT_TOKENS=24",
            "-e", "ASSISTANTD_LOCAL_MODEL_CONTEXT_WINDOW=2048",
            "-e", "ASSISTANTD_SANDBOX_POOL_SIZE=0",
            IMAGE, "assistantd", "serve", "--host", "127.0.0.1", "--port", str(port),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            assert time.monotonic() < deadline, f"not ready:\n{logs.stdout}{logs.stderr}"
            time.sleep(0.2)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_the_image_serves_and_answers_a_run(container: str) -> None:
    with OpenAI(api_key=KEY, base_url=f"{container}/v1", max_retries=0) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi!"}])
        run = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, temperature=0
        )
        run = wait_until(
            lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
            lambda r: r.status in TERMINAL,
            timeout=120,
            what="the run",
        )
        assert run.status in {"completed", "incomplete"}, run.last_error
        reply = client.beta.threads.messages.list(thread.id).data[0]
        assert reply.role == "assistant"
        assert reply.content[0].type == "text"
    metrics = httpx.get(f"{container}/metrics").text
    assert "assistantd_run_duration_seconds_count" in metrics


def test_the_image_runs_as_an_unprivileged_user() -> None:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "id -u; assistantd --help",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "10001"
    assert "serve" in done.stdout
