"""Operations: the DB row plus what the running workflow says about itself."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuthDep, MaybeTemporalDep, SessionDep
from api.errors import NotFound
from api.schemas.operations import OperationPublic
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
