"""Typed dependencies: the session, the calling project, and path-id lookups."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match
from starlette.types import Scope

from assistantd.assistants import service as assistants
from assistantd.auth.keys import PROJECT_SCOPE_KEY, authenticate
from assistantd.blobs.store import BlobStore
from assistantd.db.models import (
    Assistant,
    File,
    Item,
    Run,
    RunStep,
    Thread,
    Upload,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)
from assistantd.errors import not_found
from assistantd.files import service as files
from assistantd.kit.ids import THREAD_IDS, Prefix, check_prefix
from assistantd.kit.pagination import Page
from assistantd.kit.request_guard import PARSED_BODY
from assistantd.kit.sealed import Sealer
from assistantd.messages import repository as messages_repository
from assistantd.runs import repository as runs
from assistantd.runs.signals import head_start
from assistantd.sandbox.manager import SandboxManager
from assistantd.settings import Settings
from assistantd.threads import service as threads
from assistantd.uploads import service as uploads
from assistantd.vector_stores import service as vector_stores

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


_SESSION = "assistantd.session"
_NOTHING = object()


class TransactionRoute(APIRoute):
    """A route whose request runs in one transaction: committed after the handler (before the
    response is sent), rolled back on error. Reads (GET) only read, so their session just closes.

    The session is opened by the first `SessionDep`; a route class rather than a dependency
    with `yield`, which costs FastAPI an exit stack and a shielded cancel scope per request.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The app's routes are tried in order (three prefixes of ~70 each); a path that does
        # not start with this route's literal part (its template up to the first parameter)
        # cannot match its pattern, and a string test costs far less than the pattern and
        # FastAPI's bookkeeping (~160 us per request for a late route such as /openai/v1/...).
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and not scope["path"].startswith(self._literal)
        ):
            return Match.NONE, {}
        return super().matches(scope)

    @functools.cached_property
    def _literal(self) -> str:
        return self.path.partition("{")[0]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            parsed = request.scope.pop(PARSED_BODY, _NOTHING)
            if parsed is not _NOTHING:
                request._json = parsed  # Starlette's `Request.json()` returns it unparsed again
            try:
                response = await handler(request)
            except BaseException:
                session = request.scope.pop(_SESSION, None)
                if session is not None:
                    await session.close()  # rolls back
                raise
            session = request.scope.pop(_SESSION, None)
            if session is not None:
                try:
                    if request.method not in _READ_METHODS:
                        await session.commit()
                        await head_start(session)
                finally:
                    await session.close()
            return response

        return handle


async def _session(request: Request) -> AsyncSession:
    session: AsyncSession | None = request.scope.get(_SESSION)
    if session is None:
        state = request.app.state
        makers = state.query_sessions if request.method in _READ_METHODS else state.write_sessions
        session = request.scope[_SESSION] = makers()
    return session


SessionDep = Annotated[AsyncSession, Depends(_session)]


async def _project(request: Request) -> str:
    # Requests with a body were authenticated before it was read (RequestGuard).
    project: str | None = request.scope.get(PROJECT_SCOPE_KEY)
    if project is not None:
        return project
    headers = request.headers
    return await authenticate(
        request.app.state.keys, headers.get("authorization"), headers.get("api-key")
    )


ProjectDep = Annotated[str, Depends(_project)]


# Dependencies are `async def` even when they do no I/O: FastAPI runs a plain `def` dependency
# in its thread pool, a thread hop per request for reading an attribute.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def _sealer(request: Request) -> Sealer:
    sealer: Sealer = request.app.state.sealer
    return sealer


async def _sandboxes(request: Request) -> SandboxManager | None:
    sandboxes: SandboxManager | None = request.app.state.sandboxes
    return sandboxes


SettingsDep = Annotated[Settings, Depends(_settings)]
BlobsDep = Annotated[BlobStore, Depends(_blobs)]
SealerDep = Annotated[Sealer, Depends(_sealer)]
SandboxesDep = Annotated[SandboxManager | None, Depends(_sandboxes)]


async def _page(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query()] = None,
    before: Annotated[str | None, Query()] = None,
) -> Page:
    return Page(limit=limit, order=order, after=after, before=before)


PageDep = Annotated[Page, Depends(_page)]


async def _assistant(assistant_id: str, session: SessionDep, project: ProjectDep) -> Assistant:
    check_prefix(assistant_id, Prefix.ASSISTANT, "assistant_id")
    return await assistants.require(session, project, assistant_id)


AssistantDep = Annotated[Assistant, Depends(_assistant)]


async def _thread(thread_id: str, session: SessionDep, project: ProjectDep) -> Thread:
    check_prefix(thread_id, THREAD_IDS, "thread_id")
    return await threads.require(session, project, thread_id)


ThreadDep = Annotated[Thread, Depends(_thread)]


async def _message(
    thread_id: str, message_id: str, session: SessionDep, project: ProjectDep
) -> Item:
    """The path's message, which must belong to the path's thread.

    One query on the hot path: the message is read by key and its thread and project compared;
    the thread is read only to tell "no such thread" from "no such message" on a miss.
    """
    check_prefix(thread_id, THREAD_IDS, "thread_id")
    check_prefix(message_id, Prefix.MESSAGE, "message_id")
    row = await messages_repository.get(session, project, message_id)
    return await _of_thread(session, project, thread_id, row, "message", message_id)


_InThread = TypeVar("_InThread", Item, Run)


async def _of_thread(
    session: AsyncSession,
    project: str,
    thread_id: str,
    row: _InThread | None,
    kind: str,
    object_id: str,
) -> _InThread:
    """`row` when it belongs to the path's thread; else the thread's 404 when the thread is
    unknown (or another project's), the object's 404 when it is not."""
    if row is not None and row.thread_id == thread_id:
        return row
    await threads.require(session, project, thread_id)
    raise not_found(kind, object_id)


MessageDep = Annotated[Item, Depends(_message)]


async def _file(file_id: str, session: SessionDep, project: ProjectDep) -> File:
    check_prefix(file_id, Prefix.FILE, "file_id")
    return await files.require(session, project, file_id)


FileDep = Annotated[File, Depends(_file)]


async def _upload(upload_id: str, request: Request, project: ProjectDep) -> Upload:
    """A snapshot read in its own short transaction, not the request's.

    Adding a part streams up to 64 MB and completing copies every part: neither may run inside
    the request's write transaction (on SQLite that would hold the database's write lock for
    the whole transfer). The uploads service re-reads the row under lock before changing it.
    """
    check_prefix(upload_id, Prefix.UPLOAD, "upload_id")
    async with request.app.state.read_sessions() as session:
        return await uploads.require(session, project, upload_id)


UploadDep = Annotated[Upload, Depends(_upload)]


async def _run(thread_id: str, run_id: str, session: SessionDep, project: ProjectDep) -> Run:
    """The path's run, which must belong to the path's thread: one query on the hot path (a
    polled run), the thread read only on a miss, as for messages."""
    check_prefix(thread_id, THREAD_IDS, "thread_id")
    check_prefix(run_id, Prefix.RUN, "run_id")
    row = await runs.get(session, project, run_id)
    return await _of_thread(session, project, thread_id, row, "run", run_id)


RunDep = Annotated[Run, Depends(_run)]


async def _step(step_id: str, run: RunDep, session: SessionDep) -> RunStep:
    check_prefix(step_id, Prefix.STEP, "step_id")
    row = await runs.get_step(session, run.id, step_id)
    if row is None:
        raise not_found("run step", step_id)
    return row


StepDep = Annotated[RunStep, Depends(_step)]


async def _vector_store(
    vector_store_id: str, session: SessionDep, project: ProjectDep
) -> VectorStore:
    check_prefix(vector_store_id, Prefix.VECTOR_STORE, "vector_store_id")
    return await vector_stores.require(session, project, vector_store_id)


VectorStoreDep = Annotated[VectorStore, Depends(_vector_store)]


async def _vector_store_file(
    file_id: str, store: VectorStoreDep, session: SessionDep
) -> VectorStoreFile:
    check_prefix(file_id, Prefix.FILE, "file_id")
    return await vector_stores.require_file(session, store, file_id)


VectorStoreFileDep = Annotated[VectorStoreFile, Depends(_vector_store_file)]


async def _file_batch(
    batch_id: str, store: VectorStoreDep, session: SessionDep
) -> VectorStoreFileBatch:
    check_prefix(batch_id, Prefix.FILE_BATCH, "batch_id")
    return await vector_stores.require_batch(session, store, batch_id)


FileBatchDep = Annotated[VectorStoreFileBatch, Depends(_file_batch)]
