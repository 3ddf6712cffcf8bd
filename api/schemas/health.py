"""The health check."""

from __future__ import annotations

from pydantic import (
    BaseModel,
)

# --- health ------------------------------------------------------------------------

class Health(BaseModel):
    status: str
    db: bool
    temporal: bool
