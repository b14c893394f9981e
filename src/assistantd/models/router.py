"""HTTP routes for the Models API: the model names this server answers to (the same for every
project; a key is needed all the same)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from assistantd.deps import ProjectDep
from assistantd.models.schemas import ModelList, ModelObject
from assistantd.models.service import ModelCatalog

router = APIRouter(tags=["models"])


def _catalog(request: Request) -> ModelCatalog:
    catalog: ModelCatalog = request.app.state.catalog
    return catalog


@router.get("/models", response_model=ModelList)
async def list_models(request: Request, _: ProjectDep) -> ModelList:
    """List the models this server answers to."""
    return ModelList(data=await _catalog(request).listed())


@router.get("/models/{model}", response_model=ModelObject)
async def retrieve_model(model: str, request: Request, _: ProjectDep) -> ModelObject:
    """Retrieve a model."""
    return await _catalog(request).retrieve(model)
