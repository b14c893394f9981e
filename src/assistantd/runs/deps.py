"""What the run worker and executor need, built once per process (never imports FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.chat import ChatBackend
from assistantd.backends.routing import ModelRouter
from assistantd.backends.transport import AiohttpTransport
from assistantd.backends.windows import ContextWindows
from assistantd.blobs.store import BlobStore
from assistantd.kit.sealed import Sealer, sealer_for
from assistantd.mcp.runner import McpTool
from assistantd.runs.signals import Signals
from assistantd.sandbox.tool import CodeInterpreterTool
from assistantd.settings import Settings
from assistantd.tools.base import ToolRegistry
from assistantd.tools.file_search import FileSearchTool
from assistantd.tools.web_search import WebSearchTool


@dataclass
class RunDeps:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]  # write sessions
    reads: async_sessionmaker[AsyncSession]  # autocommit reads (no transaction, no write lock)
    signals: Signals
    backend: ChatBackend
    models: ModelRouter
    windows: ContextWindows
    tools: ToolRegistry
    blobs: BlobStore
    sealer: Sealer  # what stateless clients carry: reasoning, compaction items

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession],
        signals: Signals,
        http: httpx.AsyncClient,
        blobs: BlobStore,
    ) -> RunDeps:
        sealer = sealer_for(settings)
        return cls(
            settings=settings,
            sessions=sessions,
            reads=reads,
            signals=signals,
            backend=ChatBackend(AiohttpTransport(settings), settings),
            models=ModelRouter(settings),
            windows=ContextWindows(http, settings),
            tools=ToolRegistry(
                [
                    CodeInterpreterTool(settings, sessions=sessions),
                    FileSearchTool.build(settings, sessions, blobs, http),
                    WebSearchTool(settings),
                    McpTool(settings, sealer),
                ]
            ),
            blobs=blobs,
            sealer=sealer,
        )
