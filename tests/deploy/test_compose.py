"""docker-compose.yml: validated by Compose itself (`docker compose config`, or Debian's
`docker-compose`), then checked for what the deployment promises."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


COMPOSE = compose_command()
pytestmark = pytest.mark.skipif(
    COMPOSE is None and os.environ.get("CI") != "true",
    reason="no Docker Compose here (CI installs Debian's docker-compose)",
)


def config(**env: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None, "CI must have Docker Compose (.ci/run installs docker-compose)"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASSISTANTD_", "POSTGRES_", "AWS_"))
    }
    return subprocess.run(
        [*COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = config(ASSISTANTD_API_KEYS="sk-compose-test")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed["services"]


def volumes_of(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each mount, in either of Compose's output styles."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found.append((source, target))
    return found


def test_the_file_is_valid_and_names_every_part(services: dict[str, Any]) -> None:
    assert {"postgres", "migrate", "api", "worker", "sandbox-image"} <= set(services)
    assert "pgvector" in services["postgres"]["image"]


def test_api_keys_are_required() -> None:
    done = config()
    assert done.returncode != 0
    assert "ASSISTANTD_API_KEYS" in done.stderr


def test_only_the_workers_get_the_docker_socket(services: dict[str, Any]) -> None:
    for name, service in services.items():
        sockets = [t for s, t in volumes_of(service) if s.endswith("docker.sock")]
        assert bool(sockets) == (name == "worker"), name


def test_api_and_workers_share_the_blob_store(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["ASSISTANTD_DATA_DIR"] == "/data"
        assert ("blobs", "/data") in volumes_of(services[name]), name
        assert env["ASSISTANTD_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["ASSISTANTD_DATABASE_URL"].endswith("@postgres:5432/assistantd")
    assert services["api"]["environment"]["ASSISTANTD_EMBEDDED_WORKER"] == "false"


def test_health_checks_and_start_order(services: dict[str, Any]) -> None:
    for name in ("postgres", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["ASSISTANTD_WORKER_HTTP_PORT"] == "9464"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]["migrate"]["condition"]
        assert depends == "service_completed_successfully"
    assert services["worker"]["depends_on"]["sandbox-image"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["sandbox-image"]["network_mode"] == "none"


def test_object_storage_profile(services: dict[str, Any]) -> None:
    """`--profile s3` adds SeaweedFS; the API and workers reach it once ASSISTANTD_BLOB_URL says
    s3://..., with the same keys; without it they keep the shared volume."""
    seaweedfs = services["seaweedfs"]
    assert seaweedfs["profiles"] == ["s3"]
    assert "-s3" in seaweedfs["command"]
    assert "-master.telemetry=false" in seaweedfs["command"]  # it reports home by default
    assert ("objects", "/data") in volumes_of(seaweedfs)
    keys = {
        name: seaweedfs["environment"][name]
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        assert not env["ASSISTANTD_BLOB_URL"], name
        assert env["AWS_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert {key: env[key] for key in keys} == keys

    done = config(
        ASSISTANTD_API_KEYS="sk-compose-test", ASSISTANTD_BLOB_URL="s3://assistantd/files"
    )
    assert done.returncode == 0, done.stderr
    wired = yaml.safe_load(done.stdout)["services"]
    for name in ("api", "worker"):
        assert wired[name]["environment"]["ASSISTANTD_BLOB_URL"] == "s3://assistantd/files"

    # AWS S3 itself: no endpoint, the instance role's credentials.
    done = config(
        ASSISTANTD_API_KEYS="sk-compose-test",
        ASSISTANTD_BLOB_URL="s3://my-bucket/assistantd",
        AWS_ENDPOINT_URL="",
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_REGION="eu-west-1",
    )
    assert done.returncode == 0, done.stderr
    env = yaml.safe_load(done.stdout)["services"]["worker"]["environment"]
    assert not env["AWS_ENDPOINT_URL"]
    assert not env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_REGION"] == "eu-west-1"


def test_search_profile(services: dict[str, Any]) -> None:
    """`--profile search` adds SearxNG with the JSON format on; the API and workers use it
    once ASSISTANTD_WEB_SEARCH_URL names it (unset: web search is off)."""
    searxng = services["searxng"]
    assert searxng["profiles"] == ["search"]
    assert "searxng/searxng" in searxng["image"]
    [(source, target)] = volumes_of(searxng)
    assert target == "/etc/searxng/settings.yml"
    settings = yaml.safe_load((ROOT / "deploy" / "searxng" / "settings.yml").read_text())
    assert "json" in settings["search"]["formats"]
    assert Path(source).resolve() == (ROOT / "deploy" / "searxng" / "settings.yml").resolve()
    for name in ("api", "worker"):
        assert not services[name]["environment"]["ASSISTANTD_WEB_SEARCH_URL"], name

    done = config(
        ASSISTANTD_API_KEYS="sk-compose-test", ASSISTANTD_WEB_SEARCH_URL="http://searxng:8080"
    )
    assert done.returncode == 0, done.stderr
    wired = yaml.safe_load(done.stdout)["services"]
    for name in ("api", "worker"):
        assert wired[name]["environment"]["ASSISTANTD_WEB_SEARCH_URL"] == "http://searxng:8080"
