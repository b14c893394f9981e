"""The floor to compare against: a bare FastAPI endpoint that reads one message by primary key.

Same database, same driver, same engine and session settings as assistantd (it uses assistantd's
own `make_engine`/`make_sessionmaker`), the same uvicorn; no auth, no tenancy, no wire model.
Run: `python bench/baseline_app.py --port 8090` with the `ASSISTANTD_*` database settings.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.db.models import Message
from assistantd.ops.heap import freeze_startup_heap
from assistantd.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.sessions = make_sessionmaker(engine, write=False)
        freeze_startup_heap()  # the same garbage-collector setting as `assistantd serve`
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/messages/{message_id}")
    async def get_message(message_id: str, request: Request) -> dict[str, Any]:
        async with request.app.state.sessions() as session:
            row = await session.get(Message, message_id)
        if row is None:
            raise HTTPException(404)
        return {
            "id": row.id,
            "object": "thread.message",
            "created_at": row.created_at,
            "thread_id": row.thread_id,
            "status": row.status,
            "role": row.role,
            "content": row.content,
            "metadata": row.metadata_,
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(Settings()),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
