"""Share quotas per project (Manila's quota-sets): limits and what is in use. A project
reads its own, admins read and set any."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from api.auth import AuthContext
from api.deps import AdminDep, AuthDep, IdempotencyKey, SessionDep
from api.errors import NotFound
from api.schemas.quotas import QuotaSet, QuotaSetOne, QuotaUpdate, QuotaUsage
from api.services.operations import find_idempotent, remember_key
from vmflow import share_quotas
from vmflow.models import Project
from vmflow.settings import get_settings

router = APIRouter(prefix="/v1/quota-sets", tags=["quotas"])


def visible_project(session: Session, auth: AuthContext, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None or not auth.can_see(project.id):
        raise NotFound(f"project {project_id} not found")
    return project


def quota_set(session: Session, project_id: str) -> QuotaSetOne:
    lim = share_quotas.limits(session, project_id, get_settings())
    used = share_quotas.usage(session, project_id)
    held = share_quotas.reserved(session, project_id)
    items = {r: QuotaUsage(limit=lim[r], in_use=used[r], reserved=held[r])
             for r in share_quotas.RESOURCES}
    return QuotaSetOne(quota_set=QuotaSet(id=project_id, **items))


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
        share_quotas.set_limits(session, project.id, body.model_dump(exclude_none=True))
        remember_key(session, auth, idempotency_key, "quota", project.id, "update")
        session.commit()
    return quota_set(session, project.id)
