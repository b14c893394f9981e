"""The run worker: claims queued runs, executes them, and recovers runs whose worker died.

Runs inside `assistantd serve` (SQLite) or as `assistantd worker` processes (PostgreSQL, any
number). Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL; each claimed run carries a lease the
worker renews while it lives. Never imports FastAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.blobs.sweep import sweep_orphans
from assistantd.containers import expiry as containers
from assistantd.db.core import clone
from assistantd.db.models import Item, Run
from assistantd.files import service as files
from assistantd.ops import logs, metrics
from assistantd.responses import service as responses
from assistantd.runs import context, events, state
from assistantd.runs.deps import RunDeps
from assistantd.runs.executor import RunExecutor
from assistantd.runs.recorder import surface_of
from assistantd.runs.signals import launch_on_commit, on_outcome, run_queued_on_commit
from assistantd.runs.state import RunStatus
from assistantd.uploads import service as uploads

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, deps: RunDeps, *, worker_id: str | None = None) -> None:
        self.deps = deps
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._skip_locked = not deps.settings.is_sqlite
        self._active: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        # The queue may hold runs waiting for a slot here: a new run then queues behind them
        # rather than taking a slot that frees (fair claiming decides who gets it).
        self._backlog = False
        self._loops: list[asyncio.Task[None]] = []

    @property
    def active_runs(self) -> int:
        return len(self._active)

    @property
    def healthy(self) -> bool:
        """Its loops are running (it was started and has not stopped or crashed)."""
        return bool(self._loops) and not any(loop.done() for loop in self._loops)

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="worker-claim"),
            asyncio.create_task(self._watch_loop(), name="worker-watch"),
            asyncio.create_task(self._reap_loop(), name="worker-reap"),
            asyncio.create_task(self._blob_sweep_loop(), name="worker-blob-sweep"),
        ]
        self.deps.tools.start()
        log.info("worker %s started", self.id)

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let in-flight runs finish for `grace` seconds, then hand them back."""
        self._stopping.set()
        self.deps.signals.run_queued()
        grace = self.deps.settings.shutdown_grace_seconds if grace is None else grace
        tasks = [task for _, task in self._active.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for executor, task in list(self._active.values()):
                if task in pending:
                    executor.hand_back = True
                    task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await self.deps.tools.aclose()
        log.info("worker %s stopped", self.id)

    # --- claiming ------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        settings = self.deps.settings
        signals = self.deps.signals
        while not self._stopping.is_set():
            signals.queued.clear()
            self._slot_free.clear()
            capacity = settings.worker_concurrency - len(self._active)
            claimed: list[tuple[Run, int, list[Item] | None]] = []
            if capacity > 0:
                try:
                    async with self.deps.sessions() as session:
                        taken = await state.claim(
                            session,
                            self.id,
                            min(capacity, 32),
                            settings.worker_lease_seconds,
                            skip_locked=self._skip_locked,
                        )
                        claimed = await self._prepare(session, taken)
                        await session.commit()
                except Exception:
                    log.exception("claiming runs failed")
                    await asyncio.sleep(1.0)
                    continue
            for run, last_seq, items in claimed:
                self._launch(run, last_seq, items)
            if capacity > 0:
                self._backlog = len(claimed) == min(capacity, 32)
            if self._backlog and capacity > 0:
                continue  # there may be more
            wake = signals.queued if capacity > 0 else self._slot_free
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.worker_poll_seconds)

    async def _prepare(
        self, session: AsyncSession, claimed: list[tuple[Run, int]]
    ) -> list[tuple[Run, int, list[Item] | None]]:
        """The claimed runs with their new last event numbers, their `in_progress` events stored
        in the claim's transaction (one insert per batch, no transaction per run), and the
        first turn's items of those whose items are their own (one read for the batch, not
        one per run)."""
        if not claimed:
            return []
        batches = {
            run.id: (seq, await surface_of(run.id).claimed(session, run)) for run, seq in claimed
        }
        seqs = await events.append_many(session, self.deps.signals, batches)
        items = await context.load_many(session, [run for run, _ in claimed])
        return [(run, seqs[run.id], items.get(run.id)) for run, _ in claimed]

    def take(self, run: Run) -> Run | None:
        """Claim `run`, which its creator is about to insert in this process, for this worker:
        the run as claimed, to insert instead (`run` itself stays as created); start it with
        `start_early` or `start_on_commit`. None when this worker has no free slot, or runs are
        queued (they may be other projects' waiting for a slot: fair claiming orders them): the
        run is then inserted queued, for whichever worker claims it."""
        settings = self.deps.settings
        if self._stopping.is_set() or len(self._active) >= settings.worker_concurrency:
            return None
        if self._backlog or self.deps.signals.queued.is_set():
            return None  # runs are waiting: this one takes its turn among them
        changed = state.claimed_values(self.id, settings.worker_lease_seconds)
        return cast(Run, clone(run, attempts=run.attempts + 1, **changed))

    def has_room(self, project: str, limit: int) -> bool:
        """Whether one more run of `project` is all but sure to pass its limit of active runs
        (0: none): this process executes fewer than half of them. A run `take` claimed may then
        send its model request before the count that admits it (`runs.create.queue`); the
        count refuses it only when other processes hold the rest of the limit."""
        if limit <= 0:
            return True
        mine = sum(1 for executor, _ in self._active.values() if executor.project == project)
        return 2 * (mine + 1) <= limit

    def start_on_commit(self, session: AsyncSession, run: Run, last_seq: int) -> None:
        """Execute a run `take` claimed once the transaction that created it commits: no trip
        through the queue (its first turn's items are read then)."""

        def launch() -> None:
            self._launch(run, last_seq, local=True)

        launch_on_commit(session, launch)

    def start_early(
        self,
        session: AsyncSession,
        run: Run,
        last_seq: int,
        context: Sequence[Item],
        *,
        opening: list[dict[str, Any]] | None = None,
    ) -> None:
        """Execute a run `take` claimed now, while `session` is still creating it: its first
        model request goes out at once, and the answer is taken as it comes (its events go to
        this process's streams, which start at the commit); nothing is written, and no tool
        runs, before the creation has committed. `context` is the first turn's items, all of
        them (nothing is read before the commit). If the creation does not commit, the
        execution is dropped and what it emitted is never stored. `opening`: the rows of the
        run's first events, which the creation publishes and leaves to the run to store
        (`events.hand_over`)."""
        gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        signals = self.deps.signals
        signals.expect(run.id)
        executor = self._launch(run, last_seq, context, gate=gate, local=True, opening=opening)

        def outcome(committed: bool) -> None:
            signals.unexpect(run.id)
            if not gate.done():
                gate.set_result(committed)
            if not committed:
                executor.abandoned = True
                entry = self._active.get(run.id)
                if entry is not None:
                    entry[1].cancel()

        on_outcome(session, outcome)

    def _launch(
        self,
        run: Run,
        last_seq: int,
        context: Sequence[Item] | None = None,
        *,
        gate: asyncio.Future[bool] | None = None,
        local: bool = False,
        opening: list[dict[str, Any]] | None = None,
    ) -> RunExecutor:
        executor = RunExecutor(
            self.deps,
            run,
            last_seq,
            self.id,
            context=context,
            gate=gate,
            local=local,
            opening=opening,
        )
        task = asyncio.create_task(self._execute(executor), name=f"run-{run.id}")
        self._active[run.id] = (executor, task)
        return executor

    async def _execute(self, executor: RunExecutor) -> None:
        # This task's log lines carry the run id (a context variable, local to the task).
        logs.run_id.set(executor.run_id)
        metrics.RUNS_EXECUTING.inc()
        try:
            await executor.execute()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("run %s: executor crashed", executor.run_id)
        finally:
            metrics.RUNS_EXECUTING.dec()
            self._active.pop(executor.run_id, None)
            self._slot_free.set()

    # --- leases and cancellation ------------------------------------------------------------

    async def _watch_loop(self) -> None:
        settings = self.deps.settings
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(settings.worker_cancel_check_seconds)
            # Not the runs whose creation has not committed yet: they are in no table.
            ids = [run_id for run_id, (ex, _) in self._active.items() if ex.created]
            if not ids:
                continue
            lost: set[str] = set()
            try:
                async with self.deps.reads() as session:
                    cancelling = await state.cancelling_among(session, ids)
                if time.monotonic() - last_renew > settings.worker_lease_seconds / 3:
                    async with self.deps.sessions() as session:
                        held = await state.renew_leases(
                            session, self.id, ids, settings.worker_lease_seconds
                        )
                        await session.commit()
                    last_renew = time.monotonic()
                    lost = set(ids) - held
            except Exception:
                log.exception("checking runs for cancellation failed")
                continue
            for run_id in lost:
                # The lease lapsed and the reaper gave the run to another worker (this one
                # stalled): stop at once, writing nothing, rather than race the new owner.
                entry = self._active.get(run_id)
                if entry is not None and not entry[1].done():
                    log.warning("run %s: lease lost to another worker; stopping", run_id)
                    entry[0].lease_lost = True
                    entry[1].cancel()
            for run_id in cancelling:
                entry = self._active.get(run_id)
                if entry is not None and not entry[0].cancel_requested:
                    entry[0].cancel_requested = True
                    entry[1].cancel()

    # --- recovery -----------------------------------------------------------------------------

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.deps.settings.reaper_interval_seconds)
            try:
                await self.reap()
                # Storage housekeeping rides on the same beat.
                await files.sweep_expired(self.deps.sessions, self.deps.blobs)
                await uploads.sweep_expired(self.deps.sessions, self.deps.blobs)
                await responses.sweep_unstored(self.deps.sessions)
                await containers.sweep_expired(self.deps.sessions, self.deps.blobs, self.deps.tools)
            except Exception:
                log.exception("reaping runs failed")

    async def _blob_sweep_loop(self) -> None:
        settings = self.deps.settings
        interval = settings.blob_sweep_interval_seconds
        # The first one soon after start (a restart finishes what a crash left), spread out so
        # that workers started together do not all list the store at once.
        await asyncio.sleep(random.uniform(0.2, 1.0) * min(interval, 60.0))
        while True:
            try:
                await sweep_orphans(
                    self.deps.sessions,
                    self.deps.blobs,
                    grace_seconds=settings.blob_orphan_grace_seconds,
                )
            except Exception:
                log.exception("sweeping orphaned blobs failed")
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    async def reap(self) -> None:
        """Requeue or fail runs whose worker died; expire runs past `expires_at`."""
        settings = self.deps.settings
        signals = self.deps.signals
        async with self.deps.sessions() as session:
            requeued = False
            for run in await state.abandoned(session, skip_locked=self._skip_locked):
                status = RunStatus(run.status)
                if status is RunStatus.IN_PROGRESS and run.attempts < settings.run_max_attempts:
                    owner = run.lease_owner  # the transition clears it
                    if await state.transition(session, run.id, status, RunStatus.QUEUED):
                        log.warning("run %s: worker %s died; requeued", run.id, owner)
                        await session.refresh(run)
                        await events.append(
                            session, signals, run.id, surface_of(run.id).requeued(run)
                        )
                        requeued = True
                    continue
                end = RunStatus.CANCELLED if status is RunStatus.CANCELLING else RunStatus.FAILED
                error = (
                    "server_error",
                    "The worker executing this run stopped responding "
                    f"{run.attempts} time(s); the run was stopped. Try again.",
                )
                await self._end(session, run.id, status, end, error)
            for run in await state.overdue(session, skip_locked=self._skip_locked):
                await self._end(session, run.id, RunStatus(run.status), RunStatus.EXPIRED, None)
            if requeued:
                run_queued_on_commit(session, signals)
            await session.commit()

    async def _end(
        self,
        session: AsyncSession,
        run_id: str,
        status: RunStatus,
        end: RunStatus,
        error: tuple[str, str] | None,
    ) -> None:
        fields: dict[str, Any] = (
            {"last_error": {"code": error[0], "message": error[1]}} if error else {}
        )
        run = await state.transition(session, run_id, status, end, **fields)
        if run is None:
            return
        ended = await surface_of(run_id).ended_outside(session, run, error)
        await events.append(session, self.deps.signals, run_id, ended)
