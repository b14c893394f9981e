"""HTTP routes for files."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["files"])
