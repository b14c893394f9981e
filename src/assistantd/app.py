"""The FastAPI app factory. Engines and clients are made in the lifespan and kept on app.state."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from assistantd.assistants.router import router as assistants_router
from assistantd.auth.keys import KeyResolver
from assistantd.backends.announce import announce_backends
from assistantd.backends.chat import make_http_client
from assistantd.backends.local import LocalModel, start_local_model
from assistantd.blobs.factory import log_blob_store, make_blob_store
from assistantd.containers.router import router as containers_router
from assistantd.conversations.router import router as conversations_router
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.deps import TransactionRoute
from assistantd.errors import NotFoundError, install_error_handlers
from assistantd.files.router import router as files_router
from assistantd.health.router import router as health_router
from assistantd.kit.json_body import JsonBodies
from assistantd.kit.openapi import install_openapi
from assistantd.kit.request_guard import RequestGuard
from assistantd.messages.router import router as messages_router
from assistantd.models.router import router as models_router
from assistantd.models.service import ModelCatalog
from assistantd.ops.heap import freeze_startup_heap
from assistantd.ops.middleware import RequestContext
from assistantd.ops.router import router as metrics_router
from assistantd.playground.router import router as playground_router
from assistantd.responses.router import router as responses_router
from assistantd.responses.unstored import Forgetter
from assistantd.responses.websocket import responses_socket
from assistantd.runs.deps import RunDeps
from assistantd.runs.router import router as runs_router
from assistantd.runs.signals import Signals, listen_postgres
from assistantd.runs.worker import Worker
from assistantd.sandbox.readiness import ReadinessProbe
from assistantd.sandbox.tool import CodeInterpreterTool
from assistantd.settings import Settings
from assistantd.streams.shared import make_stream_slots
from assistantd.threads.router import router as threads_router
from assistantd.tools.file_search import FileSearchTool
from assistantd.tools.web_search import log_readiness as log_web_search
from assistantd.uploads.router import router as uploads_router
from assistantd.vector_stores.router import router as vector_stores_router

log = logging.getLogger(__name__)

# OpenAI's `/v1`, Azure's `/openai` (with `?api-version=`) and Azure's newer `/openai/v1`.
API_PREFIXES = ("/v1", "/openai", "/openai/v1")
AZURE_PREFIX = "/openai"
DOCUMENTED_PREFIX = "/v1"


def require_api_version(request: Request) -> None:
    """Azure's `/openai/...` routes answer 404 (code "404") without `?api-version=`."""
    if not request.query_params.get("api-version"):
        raise NotFoundError(
            "Resource not found: Azure OpenAI routes under /openai/ need the api-version query "
            "parameter (e.g. ?api-version=2024-08-01-preview; AzureOpenAI(api_version=...) "
            "sends it), or use /openai/v1/..., which needs none.",
            code="404",
        )


_API_VERSION: list[DependsParam] = [Depends(require_api_version)]


def routes_of(*routers: APIRouter) -> list[APIRoute]:
    """The routes of `routers`, in order (routers of plain API routes, no included routers)."""
    routes: list[APIRoute] = []
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"not an API route: {route!r}")
            routes.append(route)
    return routes


def api_routes() -> list[APIRoute]:
    """Every Assistants API route, without a prefix, in matching order."""
    return routes_of(
        runs_router,  # before threads: `POST /threads/runs` must not match `/threads/{id}`
        assistants_router,
        threads_router,
        messages_router,
        files_router,
        uploads_router,
        vector_stores_router,
        responses_router,
        conversations_router,
        containers_router,
        models_router,
    )


_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "path", "endpoint", "route_class_override")
)


def add_api_routes(app: FastAPI, routes: list[APIRoute], prefix: str) -> None:
    """`routes` under `prefix`, as plain routes of `app`.

    Not `app.include_router`: FastAPI matches an included router's routes twice per request,
    with bookkeeping per candidate route, and these routes sit under three prefixes; that was
    about a fifth of the work of a small request.
    """
    for route in routes:
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        if prefix == AZURE_PREFIX:
            options["dependencies"] = [*_API_VERSION, *options["dependencies"]]
        if prefix != DOCUMENTED_PREFIX:  # the same operations: /openapi.json lists them once
            options["include_in_schema"] = False
        app.router.add_api_route(
            prefix + route.path, route.endpoint, route_class_override=TransactionRoute, **options
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.read_sessions = make_sessionmaker(engine, write=False)
        # GET requests and event streams: reads that need no transaction of their own.
        app.state.query_sessions = make_sessionmaker(engine, write=False, autocommit=True)
        app.state.write_sessions = make_sessionmaker(engine, write=True)
        app.state.keys = KeyResolver(settings.static_keys(), app.state.read_sessions)
        app.state.blobs = make_blob_store(settings)
        app.state.signals = signals = Signals()
        app.state.streams = streams = make_stream_slots(settings)
        app.state.forgetter = forgetter = Forgetter(app.state.write_sessions)
        http = make_http_client(settings)
        deps = RunDeps.build(
            settings,
            app.state.write_sessions,
            app.state.query_sessions,
            signals,
            http,
            app.state.blobs,
        )
        app.state.models = deps.models
        app.state.catalog = ModelCatalog(deps.models, http, settings)
        app.state.backend = deps.backend
        app.state.windows = deps.windows
        app.state.sealer = deps.sealer
        file_search = FileSearchTool.of(deps.tools)
        app.state.retrieval, app.state.ingest = file_search.retrieval, file_search.ingest
        app.state.sandboxes = CodeInterpreterTool.sandboxes_of(deps.tools)
        log_web_search(settings)
        background: list[asyncio.Task[None]] = [
            asyncio.create_task(log_blob_store(app.state.blobs)),
            asyncio.create_task(announce_backends(deps.models, http)),
        ]
        if not settings.is_sqlite:
            background.append(
                asyncio.create_task(listen_postgres(settings.effective_database_url, signals))
            )
        worker: Worker | None = None
        local_model: LocalModel | None = None
        # Where this process executes runs, /readyz and the start-up log say whether code can run.
        sandbox: ReadinessProbe | None = None
        embedded = settings.embedded_worker
        if embedded if embedded is not None else settings.is_sqlite:
            local_model = await start_local_model(settings, deps.models)
            worker = Worker(deps)
            worker.start()
            sandbox = ReadinessProbe(settings)
            await sandbox.log()
        app.state.worker = worker
        app.state.sandbox_readiness = sandbox
        freeze_startup_heap()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await forgetter.aclose()
            if local_model is not None:
                await local_model.stop()
            if sandbox is not None:
                await sandbox.aclose()
            for task in background:
                task.cancel()
            await streams.aclose()
            await deps.backend.aclose()
            await http.aclose()
            await app.state.blobs.aclose()
            await engine.dispose()

    app = FastAPI(
        title="assistantd",
        version="0.1.0",
        lifespan=lifespan,
        description=(
            "An OpenAI-compatible server. Every operation under /v1 is also served under "
            "/openai/v1 and, with the api-version query parameter, under /openai."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(JsonBodies)
    # Before any route reads a body: authentication, the body limit, the text rule.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContext)  # outermost: ids and metrics for everything
    add_api_routes(app, routes_of(health_router, metrics_router), "")
    routes = api_routes()
    for prefix in API_PREFIXES:
        add_api_routes(app, routes, prefix)
        # WebSocket mode (`GET /v1/responses` upgraded): HTTP routes never match a socket.
        app.router.add_websocket_route(prefix + "/responses", responses_socket)
    # After the API's routes, which are matched first; static files need no transaction.
    app.include_router(playground_router)
    return app
