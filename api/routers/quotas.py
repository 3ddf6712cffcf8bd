"""Share quotas per project (Manila's quota-sets): limits and what is in use. A project
reads its own, admins read and set any. The logic is in api/services/quotas.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.schemas.quotas import QuotaSetOne, QuotaUpdate
from api.services.operations import find_idempotent
from api.services.quotas import quota_set, set_limits, visible_project

router = APIRouter(prefix="/v1/quota-sets", tags=["quotas"])


@router.get("", response_model=QuotaSetOne)
def show_own_quotas(session: SessionDep, auth: AuthDep) -> QuotaSetOne:
    """The caller's own project (the CLI's `share quota-show` without a project)."""
    return quota_set(session, auth.project_id)


@router.get("/{project_id}", response_model=QuotaSetOne)
def show_quotas(project_id: str, session: SessionDep, auth: AuthDep) -> QuotaSetOne:
    return quota_set(session, visible_project(session, auth, project_id).id)


@router.put("/{project_id}", response_model=QuotaSetOne)
def update_quotas(project_id: str, body: QuotaUpdate, session: SessionDep, auth: AdminDep,
                  idempotency_key: IdempotencyKey = None) -> QuotaSetOne:
    """Only the keys given change; -1 is unlimited. Lowering a limit under what is in
    use is allowed (as in Manila): it only refuses what comes next."""
    project = visible_project(session, auth, project_id)
    if find_idempotent(session, auth, idempotency_key, "quota", "update", project.id) is None:
        set_limits(session, auth, project, body.model_dump(exclude_none=True), idempotency_key)
    return quota_set(session, project.id)
