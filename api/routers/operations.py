"""Operations: the DB row plus what the running workflow says about itself."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import AuthDep, MaybeTemporalDep, SessionDep
from api.schemas.operations import OperationList, OperationPublic
from api.services import operations
from api.services.operations import operation_view

router = APIRouter(prefix="/v1/operations", tags=["operations"])


@router.get("/{operation_id}", response_model=OperationPublic)
async def show_operation(operation_id: str, session: SessionDep, auth: AuthDep,
                         client: MaybeTemporalDep) -> OperationPublic:
    return await operation_view(client, operations.get_operation(session, auth, operation_id))


@router.get("", response_model=OperationList)
async def list_operations(
    session: SessionDep, auth: AuthDep, resource_id: str | None = None,
    status: Literal["running", "succeeded", "failed", "compensated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> OperationList:
    """The caller's project's workflow runs (admin: every project's), newest first, as
    their rows say; GET /v1/operations/{id} adds what the running workflow reports."""
    rows = operations.listed(session, auth, resource_id, status, limit)
    return OperationList(operations=[await operation_view(None, op) for op in rows])
