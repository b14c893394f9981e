"""Sandbox sessions: one container per (project, thread or container), a warm pool, idle cleanup.

A session's container is named after its (project, thread), so after a server restart the next
call re-attaches to the same kernel, variables and all. Calls within a session are serialized by
its lock; different threads run in their own containers at the same time. Each worker process
keeps a pool of started containers whose kernel has already imported numpy, pandas and
matplotlib; a new thread takes one (a rename) instead of waiting for a container and the imports.
A session of another memory size (a Containers API `memory_limit`) takes one too, resized in
place with Docker's update API (~20 ms, against a cold start's second or more).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.ops.metrics import SANDBOX_SESSIONS
from assistantd.sandbox.connection import KernelGone
from assistantd.sandbox.containers import (
    POOL_PREFIX,
    Containers,
    Sandbox,
    owner,
    owner_alive,
    session_name,
)
from assistantd.sandbox.docker import DockerClient, DockerError, DockerUnavailable
from assistantd.sandbox.installation import installation_id
from assistantd.sandbox.readiness import check as check_readiness
from assistantd.settings import Settings
from assistantd.tools.base import ToolUnavailable

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # past the kernel's own time limit, the server kills the container
PUT_CHUNK = 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
MAX_OUTPUT_FILES = 50
AVAILABILITY_TTL = 10.0
REFILL_DELAY_SECONDS = 0.5  # after a session takes a pooled sandbox, before the pool refills
SWEEP_INTERVAL = 30.0  # at most; shorter when ASSISTANTD_SANDBOX_ORPHAN_SECONDS is


class SandboxError(Exception):
    """The kernel refused a request (a bug, not the model's code failing)."""


@dataclass
class OutputFile:
    path: str  # relative to /mnt/data
    data: bytes


@dataclass
class CellOutcome:
    output: str = ""  # what the code printed (stdout and stderr), capped
    dropped: int = 0  # characters of output cut
    error: dict[str, str] | None = None  # {"name", "value", "traceback"}
    timed_out: bool = False
    images: list[bytes] = field(default_factory=list)  # PNG figures
    files: list[OutputFile] = field(default_factory=list)  # new or changed in /mnt/data
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (path, size) too large
    cell: int = 0  # the kernel's cell number; 1 means a fresh kernel
    restarted: str | None = None  # the kernel died during this call: why, for the model


class Session:
    def __init__(self, project: str, thread_id: str) -> None:
        self.project = project
        self.thread_id = thread_id
        self.name = session_name(project, thread_id)
        self.lock = asyncio.Lock()
        self.sandbox: Sandbox | None = None
        self.inputs: dict[str, str] = {}  # file id -> name under /mnt/data
        self.outputs: dict[str, str] = {}  # /mnt/data path -> file id, newest last
        self.memory_mb: int | None = None  # its sandbox's memory limit; None: the default
        self.last_used = time.monotonic()
        self.retired = False  # dropped by idle cleanup: get a new Session object


class SandboxManager:
    def __init__(
        self,
        settings: Settings,
        docker: DockerClient | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self.db_sessions = sessions  # where the installation id is kept
        self.docker = docker or DockerClient(settings.sandbox_docker_host)
        self.containers = Containers(settings, self.docker)
        self._sessions: dict[tuple[str, str], Session] = {}
        self._pool: deque[Sandbox] = deque()
        self._taken_at = 0.0
        self._unclaimed: list[Sandbox] = []  # taken from the pool, still at its CPU weight
        self._pool_changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._watching = False
        self._available_until = 0.0

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pool and the idle cleanup (idempotent; needs a running loop). Called on
        the first use, so a process that never runs code never starts a container."""
        if self._started:
            return
        self._started = True
        SANDBOX_SESSIONS.set_function(self._live_sessions)
        self._pool_changed = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._cleanup_loop(), name="sandbox-cleanup"))
        if self.settings.sandbox_pool_size > 0:
            self._tasks.append(asyncio.create_task(self._pool_loop(), name="sandbox-pool"))

    def watch(self) -> None:
        """Sweep up sandboxes left behind by dead processes (idempotent; needs a running loop).
        Started with the run worker; it only lists and pings containers, never starts one."""
        if self._watching:
            return
        self._watching = True
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="sandbox-sweep"))

    async def aclose(self) -> None:
        """Stop; pool containers go, session containers stay for the next server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        while self._pool:
            await self.containers.remove(self._pool.popleft())
        for session in self._sessions.values():
            if session.sandbox is not None:
                await session.sandbox.connection.close()
        await self.docker.aclose()

    async def identify(self) -> None:
        """Learn this installation's id (its containers' label) before any container starts
        or the sweep looks at one."""
        if not self.containers.installation and self.db_sessions is not None:
            self.containers.installation = await installation_id(self.db_sessions)

    async def check_available(self) -> None:
        if time.monotonic() < self._available_until:
            return
        await self.identify()
        readiness = await check_readiness(self.settings, self.docker)
        if not readiness.ready:
            raise ToolUnavailable(f"The code interpreter is unavailable: {readiness.detail}.")
        self._available_until = time.monotonic() + AVAILABILITY_TTL
        self.start()

    def _live_sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.sandbox is not None and s.sandbox.alive)

    @property
    def pooled(self) -> int:
        """Started sandboxes waiting in the pool."""
        return sum(1 for sandbox in self._pool if sandbox.alive)

    # --- sessions --------------------------------------------------------------------------------

    def session(self, project: str, thread_id: str) -> Session:
        """The thread's session object (hold its `lock` to use it; retry if `retired`)."""
        key = (project, thread_id)
        session = self._sessions.get(key)
        if session is None or session.retired:
            session = self._sessions[key] = Session(project, thread_id)
        return session

    async def ensure(self, session: Session, *, adopt: bool = True) -> Sandbox:
        """The session's running sandbox: its own, re-attached (unless `adopt` is false: none
        can exist), from the pool, or new."""
        session.last_used = time.monotonic()
        if session.sandbox is not None:
            if session.sandbox.alive:
                return session.sandbox
            await self.containers.death(session.sandbox)
            session.sandbox = None
        session.inputs = {}
        adopted = await self._adopt(session) if adopt else None
        if adopted is not None:
            session.sandbox = adopted
            return adopted
        sandbox = await self._from_pool(session)
        if sandbox is None:
            sandbox = await self.containers.start(
                session.name, preload=False, pool=False, memory_mb=session.memory_mb
            )
        session.sandbox = sandbox
        return sandbox

    async def _adopt(self, session: Session) -> Sandbox | None:
        sandbox = await self.containers.adopt(session.name)
        if sandbox is None:
            return None
        try:
            reply = await sandbox.connection.request(
                "ping",
                {"owner": owner()},  # this process manages it now
                timeout=self.settings.sandbox_exec_timeout_seconds + GRACE_SECONDS,
            )
        except (KernelGone, TimeoutError):
            await self.containers.remove(sandbox)
            return None
        except BaseException:  # cancelled: let go of the connection, the container stays
            self._in_background(sandbox.connection.close())
            raise
        session.inputs = {str(k): str(v) for k, v in (reply.get("inputs") or {}).items()}
        return sandbox

    async def _from_pool(self, session: Session) -> Sandbox | None:
        while self._pool:
            sandbox = self._pool.popleft()
            self._taken_at = time.monotonic()
            if self._pool_changed is not None:
                self._pool_changed.set()
            if not sandbox.alive:
                await self.containers.remove(sandbox)
                continue
            try:
                # Its new name (what a restarted server adopts it by) is given while its first
                # cell runs: Docker takes ~10 ms for a rename; `run` waits for it at the end.
                sandbox.naming = self._in_background(self._name(sandbox, session.name))
                if session.memory_mb is not None and session.memory_mb != sandbox.memory_mb:
                    await self.containers.claim(sandbox, session.memory_mb)
                elif self.containers.updatable:
                    # Its CPU weight is raised before the pool warms a container again
                    # (`_pool_loop`), off its first cell's path.
                    self._unclaimed.append(sandbox)
            except DockerError:
                log.warning("could not take pooled sandbox %s", sandbox.name, exc_info=True)
                await self.containers.remove(sandbox)
                continue
            except BaseException:  # cancelled: the sandbox is nobody's now
                self._in_background(self.containers.remove(sandbox))
                raise
            return sandbox
        return None

    async def _name(self, sandbox: Sandbox, name: str) -> None:
        try:
            await self.containers.rename(sandbox, name)
        except DockerError:
            # It keeps working under its pool name; a restarted server cannot adopt it.
            log.warning("could not rename pooled sandbox %s to %s", sandbox.name, name)

    async def _named(self, sandbox: Sandbox) -> None:
        """Wait for the sandbox's rename, if one is under way."""
        naming, sandbox.naming = sandbox.naming, None
        if naming is not None:
            await asyncio.shield(naming)

    async def put(
        self, session: Session, file_id: str, name: str, chunks: AsyncIterable[bytes]
    ) -> None:
        """Copy a file into the session's /mnt/data as `name` (already a safe name)."""
        sandbox = await self.ensure(session)
        timeout = 60.0
        first = True
        pending = b""

        async def send(data: bytes, *, last: bool) -> None:
            nonlocal first
            reply = await sandbox.connection.request(
                "put",
                {
                    "name": name,
                    "file_id": file_id,
                    "data": base64.b64encode(data).decode(),
                    "append": not first,
                    "last": last,
                },
                timeout=timeout,
            )
            first = False
            if not reply.get("ok"):
                raise SandboxError(str(reply.get("error")))

        async for chunk in chunks:
            pending += chunk
            while len(pending) >= PUT_CHUNK:
                await send(pending[:PUT_CHUNK], last=False)
                pending = pending[PUT_CHUNK:]
        await send(pending, last=True)
        session.inputs[file_id] = name

    async def remove(self, session: Session, file_id: str, name: str) -> None:
        """Delete a file copied into (or written in) the session's /mnt/data as `name`."""
        sandbox = await self.ensure(session)
        reply = await sandbox.connection.request(
            "remove", {"name": name, "file_id": file_id}, timeout=30.0
        )
        if not reply.get("ok"):
            raise SandboxError(str(reply.get("error")))
        session.inputs.pop(file_id, None)

    async def drop(self, project: str, key: str) -> None:
        """Remove a session's sandbox at once (its container was deleted or expired). By name,
        so it goes even when another process holds the session: that one's connection breaks
        and its next call starts afresh. A cell running here is killed with it."""
        session = self._sessions.pop((project, key), None)
        if session is not None:
            session.retired = True
            if session.sandbox is not None:
                await session.sandbox.connection.close()
            self._lost(session)
        try:
            await self.docker.remove(session_name(project, key))
        except DockerUnavailable:
            pass  # no engine: no sandbox either
        except DockerError as exc:
            log.warning("could not remove the sandbox of %s: %s", key, exc.message)

    async def run(self, session: Session, code: str) -> CellOutcome:
        """Execute one cell in the session (the caller holds `session.lock`)."""
        sandbox = await self.ensure(session)
        limit = self.settings.sandbox_exec_timeout_seconds
        try:
            reply = await sandbox.connection.request(
                "exec", {"code": code, "timeout": limit}, timeout=limit + GRACE_SECONDS
            )
        except KernelGone:
            reason = await self.containers.death(sandbox)
            self._lost(session)
            return CellOutcome(
                restarted=f"The Python kernel died while running this code: {reason}."
            )
        except asyncio.CancelledError:
            # The run was cancelled: stop the cell too, so the thread's next call need not
            # wait for it (the kernel turns SIGINT into KeyboardInterrupt inside a cell).
            self._in_background(self.docker.kill(sandbox.container_id, signal="SIGINT"))
            raise
        except TimeoutError:
            await self.containers.remove(sandbox)
            self._lost(session)
            return CellOutcome(
                timed_out=True,
                restarted=f"The code ran past the {limit:g} s time limit and could not be "
                "interrupted, so the Python kernel was restarted.",
            )
        finally:
            session.last_used = time.monotonic()
        await self._named(sandbox)
        if not reply.get("ok"):
            # The code left the kernel unable to finish the call (e.g. every file descriptor
            # taken): a fresh kernel for the next call; this one fails with the reason.
            await self.containers.remove(sandbox)
            self._lost(session)
            return CellOutcome(
                restarted="The Python kernel could not finish running this code "
                f"({reply.get('error')}), so it was stopped."
            )
        outcome = CellOutcome(
            output=str(reply.get("output", "")),
            dropped=int(reply.get("dropped", 0)),
            error=reply.get("error"),
            timed_out=bool(reply.get("timed_out")),
            images=[base64.b64decode(image) for image in reply.get("images", [])],
            cell=int(reply.get("cell", 0)),
        )
        cap = self.settings.sandbox_max_file_mb * 1024 * 1024
        for entry in reply.get("files", [])[:MAX_OUTPUT_FILES]:
            path, size = str(entry["path"]), int(entry["size"])
            if size > cap:
                outcome.skipped.append((path, size))
                continue
            try:
                data = await self._read(sandbox, path, size)
            except (KernelGone, TimeoutError, SandboxError):
                log.warning("could not read %s from sandbox %s", path, sandbox.name)
                continue
            outcome.files.append(OutputFile(path, data))
        return outcome

    async def _read(self, sandbox: Sandbox, path: str, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            reply = await sandbox.connection.request(
                "read",
                {"path": path, "offset": len(data), "length": min(READ_CHUNK, size - len(data))},
                timeout=60.0,
            )
            if not reply.get("ok"):
                raise SandboxError(str(reply.get("error")))
            chunk = base64.b64decode(reply["data"])
            if not chunk:
                break
            data += chunk
        return bytes(data)

    async def _claim_taken(self) -> None:
        """Give the sandboxes sessions took from the pool a session's CPU weight."""
        while self._unclaimed:
            sandbox = self._unclaimed.pop()
            if not sandbox.alive:
                continue
            try:
                await self.containers.claim(sandbox)
            except DockerError:
                log.warning("could not raise the CPU weight of sandbox %s", sandbox.name)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Finish `work` even though the caller is being cancelled."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _lost(self, session: Session) -> None:
        session.sandbox = None
        session.inputs = {}
        session.outputs = {}

    # --- background ------------------------------------------------------------------------------

    async def _pool_loop(self) -> None:
        assert self._pool_changed is not None
        size = self.settings.sandbox_pool_size
        backoff = 1.0
        while True:
            for sandbox in [s for s in self._pool if not s.alive]:
                self._pool.remove(sandbox)
                await self.containers.remove(sandbox)
            if len(self._pool) < size:
                # A session just took one: its first cells run now, and starting a container
                # takes the Docker engine's CPU (which no weight governs). Let them go first.
                wait = self._taken_at + REFILL_DELAY_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._claim_taken()
                try:
                    await self.check_available()
                except ToolUnavailable as exc:
                    if backoff == 1.0:
                        log.info("sandbox pool waits: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                try:
                    name = POOL_PREFIX + secrets.token_hex(8)
                    sandbox = await self.containers.start(name, preload=True, pool=True)
                except Exception as exc:
                    log.warning("sandbox pool: could not start a container: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                self._pool.append(sandbox)
                backoff = 1.0
                continue
            self._pool_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pool_changed.wait(), timeout=5.0)

    async def _sweep_loop(self) -> None:
        interval = min(max(self.settings.sandbox_orphan_seconds / 2, 0.5), SWEEP_INTERVAL)
        while True:
            try:
                await self.identify()
                await self._sweep_orphans(await self.containers.sweep())
            except DockerUnavailable:
                pass  # no engine, no sandboxes; look again later
            except Exception:
                log.warning("sandbox sweep failed", exc_info=True)
            await asyncio.sleep(interval)

    async def _sweep_orphans(self, orphans: list[str]) -> None:
        """Remove the sandboxes of dead processes nobody took over and nobody used for
        ASSISTANTD_SANDBOX_ORPHAN_SECONDS (a thread's next call within that time re-attaches
        to its kernel, variables and all)."""
        held = {s.name for s in self._sessions.values() if s.sandbox is not None}
        for name in orphans:
            if name in held:
                continue
            sandbox = await self.containers.adopt(name)
            if sandbox is None:
                continue
            try:
                reply = await sandbox.connection.request("ping", timeout=5.0)
            except (KernelGone, TimeoutError):
                await sandbox.connection.close()  # busy running a cell, or going away
                continue
            managed = owner_alive(str(reply.get("owner") or ""))
            idle = float(reply.get("idle", 0.0))
            if managed is False and idle >= self.settings.sandbox_orphan_seconds:
                log.info("removing sandbox %s: its process died, unused for %.0f s", name, idle)
                await self.containers.remove(sandbox)
            else:
                await sandbox.connection.close()

    async def _cleanup_loop(self) -> None:
        idle = self.settings.sandbox_idle_timeout_seconds
        interval = min(max(idle / 4, 0.2), 30.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._cleanup(idle)
            except Exception:
                log.warning("sandbox cleanup failed", exc_info=True)

    async def _cleanup(self, idle: float) -> None:
        now = time.monotonic()
        for key, session in list(self._sessions.items()):
            if session.lock.locked() or now - session.last_used < idle:
                continue
            async with session.lock:
                sandbox = session.sandbox
                if sandbox is not None and sandbox.alive:
                    # Another worker process may have used this sandbox since: ask the kernel.
                    kernel_idle = await self._kernel_idle(sandbox)
                    if kernel_idle < idle:
                        session.last_used = now - kernel_idle
                        continue
                if sandbox is not None:
                    await self.containers.remove(sandbox)
                session.sandbox = None
                session.retired = True
                if self._sessions.get(key) is session:
                    del self._sessions[key]

    async def _kernel_idle(self, sandbox: Sandbox) -> float:
        try:
            reply = await sandbox.connection.request("ping", timeout=5.0)
        except (KernelGone, TimeoutError):
            return float("inf")
        return float(reply.get("idle", float("inf")))
