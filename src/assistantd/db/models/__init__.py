"""ORM tables. Stored shapes are what is convenient to query; wire shapes live in schemas."""

from assistantd.db.base import Base
from assistantd.db.models.api_key import ApiKey
from assistantd.db.models.assistant import Assistant
from assistantd.db.models.container import Container, ContainerFile
from assistantd.db.models.file import File, Upload, UploadPart
from assistantd.db.models.installation import Installation
from assistantd.db.models.open_stream import OpenStream
from assistantd.db.models.run import Run, RunEvent, RunStep
from assistantd.db.models.thread import Item, Thread
from assistantd.db.models.vector_store import (
    VectorStore,
    VectorStoreChunk,
    VectorStoreFile,
    VectorStoreFileBatch,
)

__all__ = [
    "ApiKey",
    "Assistant",
    "Base",
    "Container",
    "ContainerFile",
    "File",
    "Installation",
    "Item",
    "OpenStream",
    "Run",
    "RunEvent",
    "RunStep",
    "Thread",
    "Upload",
    "UploadPart",
    "VectorStore",
    "VectorStoreChunk",
    "VectorStoreFile",
    "VectorStoreFileBatch",
]
