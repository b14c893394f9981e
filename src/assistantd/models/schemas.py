"""Wire models of the Models API (`GET /models`, `GET /models/{model}`)."""

from __future__ import annotations

from typing import Literal

from assistantd.kit.schemas import WireModel


class ModelObject(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
