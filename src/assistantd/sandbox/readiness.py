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

__all__ = [
    "BUILD_HINT",
    "RUNSC_HINT",
    "Readiness",
    "ReadinessProbe",
    "check",
    "check_once",
    "trial",
]

log = logging.getLogger(__name__)

RUNSC_HINT = (
    "For gVisor (ASSISTANTD_SANDBOX_RUNTIME=runsc): install it (Debian: `apt-get install "
    "runsc`), register it in /etc/docker/daemon.json as "
    '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}} '
    "and reload the engine (`kill -HUP $(pidof dockerd)` or `systemctl reload docker`)."
)
BUILD_HINT = (
    "`make sandbox-image` or `assistantd sandbox build` (offline: debootstrap, as root, about "
    "3 minutes; `make run` builds it when the image is missing)"
)


@dataclass(frozen=True)
class Readiness:
    status: Literal["ready", "unavailable"]
    detail: str  # what is there, or what is missing and what to do
    missing: Literal["docker", "image", "runtime"] | None = None  # what to get first

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def as_dict(self, settings: Settings) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "image": settings.sandbox_image,
            "docker_host": settings.sandbox_docker_host,
            "runtime": settings.sandbox_runtime,
        }


async def check(settings: Settings, docker: DockerClient) -> Readiness:
    """Ask the Docker engine for itself and for the sandbox image."""
    host, image = settings.sandbox_docker_host, settings.sandbox_image
    runtime = settings.sandbox_runtime
    try:
        await docker.ping()
        found = await docker.image(image)
        runtimes = await docker.runtimes()
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
    if runtime not in runtimes:
        return Readiness(
            "unavailable",
            f"the Docker engine at {host} has no '{runtime}' runtime "
            f"(ASSISTANTD_SANDBOX_RUNTIME; it has: {', '.join(sorted(runtimes))}). " + RUNSC_HINT,
            "runtime",
        )
    return Readiness(
        "ready", f"image '{image}' on the Docker engine at {host}, runtime '{runtime}'"
    )


async def trial(settings: Settings) -> Readiness:
    """`check`, then a real container under the configured runtime: it runs Python and
    exits (what `assistantd sandbox check` does, since a registered runtime may still fail)."""
    from assistantd.sandbox.containers import Containers

    docker = DockerClient(settings.sandbox_docker_host, timeout=30.0)
    try:
        readiness = await check(settings, docker)
        if not readiness.ready:
            return readiness
        config = Containers(settings, docker).config(preload=False, pool=True)
        config.update(Cmd=["python3", "-c", "print('ok')"], AttachStdin=False, OpenStdin=False)
        name = f"assistantd-check-{int(time.time() * 1000)}"
        started = time.monotonic()
        container = await docker.create(name, config)
        try:
            await docker.start(container)
            code = await docker.wait(container, timeout=60.0)
        except DockerError as exc:
            return Readiness(
                "unavailable",
                f"a sandbox under the '{settings.sandbox_runtime}' runtime did not start: "
                f"{exc.message}. " + RUNSC_HINT,
                "runtime",
            )
        finally:
            await docker.remove(container)
        if code != 0:
            return Readiness(
                "unavailable",
                f"a sandbox under the '{settings.sandbox_runtime}' runtime exited with {code}",
                "runtime",
            )
        took = (time.monotonic() - started) * 1000
        return Readiness("ready", f"{readiness.detail}; a trial sandbox ran in {took:.0f} ms")
    finally:
        await docker.aclose()


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
