"""Operations: the DB row plus what the running workflow says about itself."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import AuthDep, MaybeTemporalDep, SessionDep
from api.errors import NotFound
from api.schemas.operations import OperationList, OperationPublic
from api.services.operations import operation_view
from vmflow.models import Operation

router = APIRouter(prefix="/v1/operations", tags=["operations"])


@router.get("/{operation_id}", response_model=OperationPublic)
async def show_operation(operation_id: str, session: SessionDep, auth: AuthDep,
                         client: MaybeTemporalDep) -> OperationPublic:
    op = session.get(Operation, operation_id)
    if op is None or not auth.can_see(op.project_id):
        raise NotFound(f"operation {operation_id} not found")
    return await operation_view(client, op)


@router.get("", response_model=OperationList)
async def list_operations(
    session: SessionDep, auth: AuthDep, resource_id: str | None = None,
    status: Literal["running", "succeeded", "failed", "compensated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> OperationList:
    """The caller's project's workflow runs (admin: every project's), newest first, as
    their rows say; GET /v1/operations/{id} adds what the running workflow reports."""
    stmt = select(Operation).where(Operation.workflow_id != "")  # not idempotency records
    if not auth.is_admin:
        stmt = stmt.where(Operation.project_id == auth.project_id)
    if resource_id is not None:
        stmt = stmt.where(Operation.resource_id == resource_id)
    if status is not None:
        stmt = stmt.where(Operation.status == status)
    rows = session.exec(stmt.order_by(col(Operation.started_at).desc()).limit(limit))
    return OperationList(operations=[await operation_view(None, op) for op in rows])
