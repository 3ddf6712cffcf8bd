"""Operations: what GET /v1/operations/{id} shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
)

# --- operations --------------------------------------------------------------------

class OperationPublic(BaseModel):
    id: str
    resource_type: str
    resource_id: str
    action: str
    status: str
    step: str | None
    progress: int | None
    attempt: int | None
    last_error: str | None
    workflow_id: str
    run_id: str | None
    project_id: str
    user_id: str
    request_id: str
    started_at: datetime
    finished_at: datetime | None


class OperationList(BaseModel):
    operations: list[OperationPublic]
