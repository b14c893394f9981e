"""Rows the API under test cannot make yet on its own, written straight into its database.

Files come from `POST /files` and run messages from the run engine; these tests only need a
file id that exists and a message that carries a `run_id`, so they insert the rows directly.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from assistantd.auth.keys import hash_key
from assistantd.db.engine import sync_url
from assistantd.db.models import ApiKey, File, Item
from assistantd.kit.ids import Prefix, created_at_of, new_id, position_of
from assistantd.settings import Settings


class Seed:
    """Insert rows owned by the project of `api_key`."""

    def __init__(self, database_url: str, data_dir: str, api_key: str) -> None:
        settings = Settings(database_url=database_url, data_dir=Path(data_dir))
        self._url = sync_url(settings)
        self._api_key = api_key

    def _write(self, row: File | Item) -> str:
        engine = create_engine(self._url)
        try:
            with Session(engine) as session:
                project = session.scalar(
                    select(ApiKey.project).where(ApiKey.key_hash == hash_key(self._api_key))
                )
                assert project is not None
                row.project = project
                session.add(row)
                session.commit()
                return row.id
        finally:
            engine.dispose()

    def file(self, filename: str = "chart.png") -> str:
        file_id = new_id(Prefix.FILE)
        return self._write(
            File(
                id=file_id,
                created_at=created_at_of(file_id),
                bytes=4,
                filename=filename,
                purpose="assistants",
                status="processed",
                content_type="image/png",
                blob_key=f"seed/{file_id}",
            )
        )

    def run_message(self, thread_id: str, run_id: str, text: str) -> str:
        """An assistant message as a run would leave it."""
        message_id = new_id(Prefix.MESSAGE)
        created_at = created_at_of(message_id)
        return self._write(
            Item(
                id=message_id,
                created_at=created_at,
                thread_id=thread_id,
                position=position_of(message_id),
                type="message",
                role="assistant",
                content=[{"type": "text", "text": {"value": text, "annotations": []}}],
                status="completed",
                completed_at=created_at,
                assistant_id=new_id(Prefix.ASSISTANT),
                run_id=run_id,
                attachments=[],
                metadata_={},
            )
        )
