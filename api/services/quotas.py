"""Quotas per project (Manila's quota-sets, with Nova's instances, cores and ram and
Neutron's floating IPs in the same set): limits, usage, and setting limits.

The logic behind api/routers/quotas.py; the counting itself is vmflow.share_quotas and
vmflow.compute_quotas.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from api.auth import AuthContext
from api.errors import NotFound
from api.schemas.quotas import QuotaSet, QuotaSetOne, QuotaUsage
from api.services.operations import remember_key
from vmflow import compute_quotas, share_quotas
from vmflow.models import Project
from vmflow.settings import get_settings


def visible_project(session: Session, auth: AuthContext, project_id: str) -> Project:
    """A project the caller may see, else 404."""
    project = session.get(Project, project_id)
    if project is None or not auth.can_see(project.id):
        raise NotFound(f"project {project_id} not found")
    return project


def quota_set(session: Session, project_id: str) -> QuotaSetOne:
    """Each resource's limit, what is in use and what is reserved."""
    s = get_settings()
    lim = share_quotas.limits(session, project_id, s)
    used = share_quotas.usage(session, project_id)
    held = share_quotas.reserved(session, project_id)
    items = {r: QuotaUsage(limit=lim[r], in_use=used[r], reserved=held[r])
             for r in share_quotas.RESOURCES}
    lim, used = compute_quotas.limits(session, project_id, s), compute_quotas.usage(
        session, project_id)
    items |= {r: QuotaUsage(limit=lim[r], in_use=used[r]) for r in compute_quotas.RESOURCES}
    return QuotaSetOne(quota_set=QuotaSet(id=project_id, **items))


def set_limits(session: Session, auth: AuthContext, project: Project, limits: Mapping[str, int],
               idempotency_key: str | None) -> None:
    """The limits given change (committed); the others stay."""
    share_quotas.set_limits(session, project.id, limits,
                            share_quotas.RESOURCES + compute_quotas.RESOURCES)
    remember_key(session, auth, idempotency_key, "quota", project.id, "update")
    session.commit()
