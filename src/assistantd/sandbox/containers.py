"""Sandbox containers: how one is configured, started and attached to its kernel."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass
from importlib import resources
from typing import Any

from assistantd.sandbox.connection import KernelConnection
from assistantd.sandbox.docker import DockerClient, DockerError
from assistantd.settings import Settings

log = logging.getLogger(__name__)

LABEL = "org.assistantd.sandbox"
OWNER_LABEL = "org.assistantd.sandbox.owner"
# The installation (`sandbox.installation`) a container belongs to: only its own are removed.
INSTALLATION_LABEL = "org.assistantd.sandbox.installation"
SESSION_PREFIX = "assistantd-sbx-"
POOL_PREFIX = "assistantd-pool-"
USER = "1000:1000"
OWNER = "uid=1000,gid=1000"
PRELOAD = ["numpy", "pandas", "matplotlib.pyplot"]
# The kernel outlives the server's own idle cleanup by this much, so that a sandbox nobody
# manages any more (its server died) still goes away by itself.
KERNEL_IDLE_MARGIN = 60.0


def kernel_source() -> str:
    return resources.files("assistantd.sandbox").joinpath("kernel.py").read_text()


def session_name(project: str, thread_id: str) -> str:
    digest = hashlib.sha256(f"{project}\0{thread_id}".encode()).hexdigest()[:32]
    return SESSION_PREFIX + digest


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Sandbox:
    """A running container and the connection to the kernel inside it."""

    container_id: str
    name: str
    connection: KernelConnection
    memory_mb: int  # its memory limit
    # A pooled sandbox taken by a session gets the session's name while its first cell runs.
    naming: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.connection.alive


# CPU weights (cgroup cpu.shares; Docker's default is 1024): a pool container's against a
# session's, when they compete for the machine's cores.
SESSION_CPU_SHARES = 1024
POOL_CPU_SHARES = 16


class Containers:
    """Creates, adopts and removes sandbox containers."""

    def __init__(self, settings: Settings, docker: DockerClient) -> None:
        self.settings = settings
        self.docker = docker
        self._kernel = kernel_source()
        # Whether a running sandbox's limits can change (gVisor's cannot): else a pool
        # container could never get a session's CPU weight back, and warms at that weight.
        self.updatable = settings.sandbox_runtime != "runsc"
        # This installation's id (`SandboxManager.identify`); until known, the sweep removes
        # nothing.
        self.installation = ""

    def config(self, *, preload: bool, pool: bool, memory_mb: int | None = None) -> dict[str, Any]:
        """A container's configuration; `memory_mb` defaults to ASSISTANTD_SANDBOX_MEMORY_MB."""
        s = self.settings
        kernel_config = {
            "idle_timeout": s.sandbox_idle_timeout_seconds + KERNEL_IDLE_MARGIN,
            "max_output_chars": s.sandbox_max_output_chars,
            "preload": PRELOAD if preload else [],
            "owner": owner(),
        }
        memory = (memory_mb or s.sandbox_memory_mb) * 1024 * 1024
        return {
            "Image": s.sandbox_image,
            "Cmd": ["python3", "-c", self._kernel, json.dumps(kernel_config)],
            "Env": [
                "LANG=C.UTF-8",
                "HOME=/tmp",
                "MPLBACKEND=Agg",
                "MPLCONFIGDIR=/tmp/matplotlib",
                "PYTHONDONTWRITEBYTECODE=1",
                f"OPENBLAS_NUM_THREADS={max(1, int(s.sandbox_cpus))}",
                f"OMP_NUM_THREADS={max(1, int(s.sandbox_cpus))}",
            ],
            "User": USER,
            "WorkingDir": "/mnt/data",
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
            "OpenStdin": True,
            "StdinOnce": False,
            "Tty": False,
            "NetworkDisabled": True,
            "Labels": {
                LABEL: "pool" if pool else "session",
                OWNER_LABEL: owner(),
                INSTALLATION_LABEL: self.installation,
            },
            "HostConfig": {
                "NetworkMode": "none",
                "Runtime": s.sandbox_runtime,
                "ReadonlyRootfs": True,
                "Init": True,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Memory": memory,
                "MemorySwap": memory,
                "NanoCpus": int(s.sandbox_cpus * 1e9),
                # A pool container warms up (its kernel imports numpy, pandas and matplotlib:
                # a second of CPU or more) on what the sessions leave over; taken, it gets the
                # default weight back (`Containers.claim`).
                "CpuShares": POOL_CPU_SHARES if pool and self.updatable else SESSION_CPU_SHARES,
                "PidsLimit": s.sandbox_pids_limit,
                "IpcMode": "private",
                "OomScoreAdj": 500,
                "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}],
                "Tmpfs": {
                    # Docker copies the image directory's mode over `mode=`; owner it is.
                    "/mnt/data": f"rw,noexec,nosuid,nodev,size={s.sandbox_data_mb}m,{OWNER}",
                    "/tmp": f"rw,noexec,nosuid,nodev,size=64m,{OWNER}",
                },
                "LogConfig": {"Type": "none", "Config": {}},
            },
        }

    async def start(
        self, name: str, *, preload: bool, pool: bool, memory_mb: int | None = None
    ) -> Sandbox:
        """Create and start a container; returns once its kernel is ready."""
        memory_mb = memory_mb or self.settings.sandbox_memory_mb
        config = self.config(preload=preload, pool=pool, memory_mb=memory_mb)
        container_id = await self._create(name, config)
        try:
            attachment = await self.docker.attach(container_id)
            connection = KernelConnection(attachment, name)
            await self.docker.start(container_id)
            await asyncio.wait_for(connection.ready, timeout=60.0 if preload else 30.0)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.docker.remove(container_id)
            raise
        return Sandbox(container_id, name, connection, memory_mb)

    async def claim(self, sandbox: Sandbox, memory_mb: int | None = None) -> None:
        """Give a pooled sandbox taken by a session a session's CPU weight and, when given,
        another memory limit (a container of another size): Docker updates the cgroups in
        place, the kernel keeps running."""
        resources: dict[str, Any] = {"CpuShares": SESSION_CPU_SHARES}
        if memory_mb is not None:
            memory = memory_mb * 1024 * 1024
            resources.update(Memory=memory, MemorySwap=memory)
        await self.docker.update(sandbox.container_id, resources)
        if memory_mb is not None:
            sandbox.memory_mb = memory_mb

    async def _create(self, name: str, config: dict[str, Any]) -> str:
        try:
            return await self.docker.create(name, config)
        except DockerError as exc:
            if exc.status != 409:  # name taken: a dead container of the same session
                raise
        await self.docker.remove(name)
        return await self.docker.create(name, config)

    async def adopt(self, name: str) -> Sandbox | None:
        """Re-attach to a session's container still running (e.g. after a server restart)."""
        info = await self.docker.inspect(name)
        if info is None:
            return None
        if not info.get("State", {}).get("Running"):
            await self.docker.remove(info["Id"])
            return None
        attachment = await self.docker.attach(info["Id"])
        memory = int(info.get("HostConfig", {}).get("Memory") or 0) // (1024 * 1024)
        return Sandbox(
            info["Id"],
            name,
            KernelConnection(attachment, name),
            memory or self.settings.sandbox_memory_mb,
        )

    async def rename(self, sandbox: Sandbox, name: str) -> None:
        try:
            await self.docker.rename(sandbox.container_id, name)
        except DockerError as exc:
            if exc.status != 409:
                raise
            await self.docker.remove(name)
            await self.docker.rename(sandbox.container_id, name)
        sandbox.name = name

    async def death(self, sandbox: Sandbox) -> str:
        """Why a sandbox's kernel went away, for the model; removes the container."""
        reason = "the Python process exited"
        with contextlib.suppress(Exception):
            # The kernel's end reaches its connection a moment before Docker's state.
            with contextlib.suppress(Exception):
                await self.docker.wait(sandbox.container_id, timeout=2.0)
            info = await self.docker.inspect(sandbox.container_id)
            reason = death_reason((info or {}).get("State", {}), sandbox.memory_mb)
        await self.remove(sandbox)
        return reason

    async def remove(self, sandbox: Sandbox) -> None:
        await sandbox.connection.close()
        with contextlib.suppress(Exception):
            await self.docker.remove(sandbox.container_id)

    async def sweep(self) -> list[str]:
        """Remove this installation's stopped sandboxes, and its pool containers left by dead
        processes of this host. Returns the names of its running session sandboxes a dead
        process of this host created (one may have been adopted since: its kernel knows its
        owner now), from the same listing. Another installation's containers (on a shared
        engine), or any before this one's id is known, are never touched."""
        orphans: list[str] = []
        if not self.installation:
            return orphans
        for info in await self.docker.containers(
            [LABEL, f"{INSTALLATION_LABEL}={self.installation}"]
        ):
            names = [n.lstrip("/") for n in info.get("Names") or []]
            owner_gone = owner_alive(str((info.get("Labels") or {}).get(OWNER_LABEL, ""))) is False
            state = info.get("State")
            pooled = any(n.startswith(POOL_PREFIX) for n in names)
            if state in ("exited", "dead") or (pooled and owner_gone):
                with contextlib.suppress(Exception):
                    await self.docker.remove(info["Id"])
            elif state == "running" and owner_gone:
                orphans.extend(n for n in names if n.startswith(SESSION_PREFIX))
        return orphans


def death_reason(state: dict[str, Any], memory_mb: int) -> str:
    """Why a container's kernel ended, from Docker's `State`: out of memory only when the
    engine says the OOM killer struck (`OOMKilled`); a kill by any other hand (the code's own
    `os.kill`, say) is named by its signal (the init process exits with 128 + its number)."""
    if state.get("OOMKilled"):
        return f"it ran out of memory (the limit is {memory_mb} MiB)"
    code = int(state.get("ExitCode") or 0)
    if code > 128:
        number = code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"it was killed by {name} (signal {number}), not by running out of memory"
    if state.get("Running"):
        return "the Python process stopped answering"
    return f"the Python process exited with status {code}"


def owner_alive(owner_id: str) -> bool | None:
    """Whether the process `host:pid` lives; None when it is on another host."""
    owner_host, _, pid = owner_id.partition(":")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return None
    return _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
