"""Whether the code interpreter can run code here and, when it cannot, exactly what to do.

`serve` and `worker` log it when they start, `/readyz` reports it, `assistantd sandbox check`
prints it, and a run that needs the code interpreter when it is not ready fails with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from assistantd.sandbox.docker import DockerClient, DockerError, DockerUnavailable
from assistantd.settings import Settings

__all__ = ["BUILD_HINT", "Readiness", "ReadinessProbe", "check", "check_once"]

log = logging.getLogger(__name__)

BUILD_HINT = (
    "`make sandbox-image` or `assistantd sandbox build` (offline: debootstrap, as root, about "
    "3 minutes; `make run` builds it when the image is missing)"
)


@dataclass(frozen=True)
class Readiness:
    status: Literal["ready", "unavailable"]
    detail: str  # what is there, or what is missing and what to do
    missing: Literal["docker", "image"] | None = None  # what to get first

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def as_dict(self, settings: Settings) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "image": settings.sandbox_image,
            "docker_host": settings.sandbox_docker_host,
        }


async def check(settings: Settings, docker: DockerClient) -> Readiness:
    """Ask the Docker engine for itself and for the sandbox image."""
    host, image = settings.sandbox_docker_host, settings.sandbox_image
    try:
        await docker.ping()
        found = await docker.image(image)
    except DockerUnavailable as exc:
        return Readiness(
            "unavailable",
            f"{exc}. The code interpreter runs code in Docker: install and start a Docker "
            "engine (Debian: `apt-get install docker.io`, then `systemctl start docker` or "
            "`dockerd &`), or point ASSISTANTD_SANDBOX_DOCKER_HOST at one; then build the "
            "sandbox image with " + BUILD_HINT,
            "docker",
        )
    except DockerError as exc:
        return Readiness(
            "unavailable", f"the Docker engine at {host} answered: {exc.message}", "docker"
        )
    if found is None:
        return Readiness(
            "unavailable",
            f"the sandbox image '{image}' is not on the Docker engine at {host}: build it with "
            + BUILD_HINT,
            "image",
        )
    return Readiness("ready", f"image '{image}' on the Docker engine at {host}")


async def check_once(settings: Settings) -> Readiness:
    """`check` with a client of its own (the command line)."""
    docker = DockerClient(settings.sandbox_docker_host, timeout=5.0)
    try:
        return await check(settings, docker)
    finally:
        await docker.aclose()


class ReadinessProbe:
    """`check` for `/readyz`, answered from a cache for a few seconds (probes come often)."""

    TTL = 5.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._docker = DockerClient(settings.sandbox_docker_host, timeout=5.0)
        self._last: tuple[float, Readiness] | None = None

    async def check(self) -> Readiness:
        if self._last is not None and time.monotonic() - self._last[0] < self.TTL:
            return self._last[1]
        readiness = await check(self.settings, self._docker)
        self._last = (time.monotonic(), readiness)
        return readiness

    async def log(self) -> None:
        """Say at start whether code can run, and if not what to do."""
        readiness = await self.check()
        if readiness.ready:
            log.info("code interpreter ready: %s", readiness.detail)
        else:
            log.warning("code interpreter not ready: %s", readiness.detail)

    async def aclose(self) -> None:
        await self._docker.aclose()
