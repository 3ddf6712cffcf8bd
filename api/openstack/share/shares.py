"""Manila's shares: create, list (summary and detail, with Manila's filters, sorting
and paging), show, update, delete; the export_locations sub-resource and the share's
one instance. A facade over api/services/shares.py."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import Field
from sqlmodel import Session, col, or_, select

from api.auth import AuthContext
from api.deps import SessionDep, TemporalDep
from api.errors import BadRequest, NotFound
from api.openstack.common import Lenient, OsAdminDep, OsAuthDep, OsWriterDep
from api.openstack.microversion import MicroversionDep, Version
from api.openstack.share import share_views
from api.openstack.share.base import AZ, flag, page, router
from api.schemas.shares import ShareCreate
from api.services import shares as service
from api.services.share_metadata import check as check_metadata
from vmflow.models import Share, ShareType

api = router()


class ShareFields(Lenient):
    share_proto: str = Field(max_length=255)
    size: int | None = Field(default=None, ge=1)
    name: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    display_description: str | None = Field(default=None, max_length=255)
    share_type: str | None = Field(default=None, max_length=255)
    volume_type: str | None = Field(default=None, max_length=255)
    snapshot_id: str | None = Field(default=None, max_length=255)
    is_public: bool | str = False
    metadata: dict[str, Any] | None = None
    availability_zone: str | None = None
    share_network_id: str | None = None
    share_group_id: str | None = None


class ShareBody(Lenient):
    share: ShareFields


class ShareUpdateFields(Lenient):
    name: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    display_description: str | None = Field(default=None, max_length=255)
    is_public: bool | str | None = None


class ShareUpdateBody(Lenient):
    share: ShareUpdateFields


def visible(session: Session, auth: AuthContext, share_id: str) -> Share:
    """Readable: the caller's project's, or public (Manila), else 404."""
    share = session.get(Share, share_id)
    if share is None or not (auth.can_see(share.project_id) or share.is_public):
        raise NotFound(f"Share {share_id} could not be found.")
    return share


def detail_of(request: Request, session: Session, auth: AuthContext, share: Share,
              v: Version) -> dict[str, Any]:
    return share_views.detail(request, share, session.get(ShareType, share.share_type_id), v,
                              auth.is_admin)


@api.post("/shares")
async def create_share(body: ShareBody, request: Request, session: SessionDep,
                       auth: OsWriterDep, client: TemporalDep,
                       v: MicroversionDep) -> dict[str, Any]:
    f = body.share
    if f.share_network_id or f.share_group_id:
        raise BadRequest("vmflow's share types have driver_handles_share_servers=False: "
                         "share networks and share groups are not used", type="InvalidInput")
    if f.availability_zone not in (None, "", AZ):
        raise BadRequest(f"Availability zone {f.availability_zone!r} not found; vmflow has "
                         f"one: {AZ}", type="AvailabilityZoneNotFound")
    meta = check_metadata(f.metadata or {})
    is_public = flag(f.is_public, "is_public")
    # validated above and by the service; the v1 model's stricter name rule is Manila's
    # optional name here ("" shows as null)
    create = ShareCreate.model_construct(
        share_proto=f.share_proto, size=f.size, name=f.name or f.display_name or "",
        share_type=f.share_type or f.volume_type, snapshot_id=f.snapshot_id)
    share, _ = await service.create_share(
        client, session, auth, create, None, description=f.description or
        f.display_description, is_public=is_public, metadata=meta)
    return {"share": detail_of(request, session, auth, share, v)}


SORT_KEYS: dict[str, Callable[[Share], Any]] = {
    "id": lambda s: s.id, "status": lambda s: s.status, "size": lambda s: s.size_gb,
    "host": lambda s: s.host, "share_proto": lambda s: s.share_proto,
    "availability_zone": lambda s: AZ, "user_id": lambda s: s.user_id,
    "project_id": lambda s: s.project_id, "created_at": lambda s: s.created_at,
    "updated_at": lambda s: s.updated_at, "name": lambda s: s.name,
    "display_name": lambda s: s.name, "share_type_id": lambda s: s.share_type_id,
    "share_type": lambda s: s.share_type_id, "snapshot_id": lambda s: s.snapshot_id,
    "is_public": lambda s: s.is_public,
}


def metadata_filter(text: str) -> dict[str, str]:
    """?metadata={'k': 'v'} as the clients send it (a Python dict literal, or JSON)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid metadata filter {text!r}", type="InvalidInput")
    return {str(k): str(v) for k, v in value.items()}


def matches(s: Share, q: Any, admin: bool) -> bool:
    if "name" in q and s.name != q["name"]:
        return False
    if "name~" in q and q["name~"].lower() not in s.name.lower():
        return False
    if "description" in q and s.description != q["description"]:
        return False
    if "description~" in q and q["description~"].lower() not in (s.description or "").lower():
        return False
    if "status" in q and s.status != q["status"]:
        return False
    if "share_type_id" in q and s.share_type_id != q["share_type_id"]:
        return False
    if "snapshot_id" in q and s.snapshot_id != q["snapshot_id"]:
        return False
    if admin and "host" in q and s.host != q["host"]:
        return False
    if "metadata" in q and any((s.meta or {}).get(k) != v
                               for k, v in metadata_filter(q["metadata"]).items()):
        return False
    if "export_location" in q:
        wanted = q["export_location"]
        if not any(wanted in (p, share_views.export_location_id(s, p))
                   for p in s.export_locations or []):
            return False
    return True


def listed(request: Request, session: Session, auth: AuthContext,
           v: Version) -> tuple[list[Share], int]:
    q = request.query_params
    if "is_soft_deleted" in q and flag(q["is_soft_deleted"], "is_soft_deleted"):
        return [], 0  # vmflow deletes shares outright: none is ever soft-deleted
    stmt = select(Share)
    if not (auth.is_admin and "all_tenants" in q and flag(q["all_tenants"] or "1",
                                                          "all_tenants")):
        mine = col(Share.project_id) == auth.project_id
        public = "is_public" in q and flag(q["is_public"], "is_public")
        stmt = stmt.where(or_(mine, col(Share.is_public).is_(True)) if public else mine)
    rows = [s for s in session.exec(stmt) if matches(s, q, auth.is_admin)]
    return page(request, rows, SORT_KEYS)


def with_count(request: Request, v: Version, body: dict[str, Any], count: int) -> None:
    if v >= Version(2, 42) and "with_count" in request.query_params and \
            flag(request.query_params["with_count"], "with_count"):
        body["count"] = count


@api.get("/shares")
def list_shares(request: Request, session: SessionDep, auth: OsAuthDep,
                v: MicroversionDep) -> dict[str, Any]:
    rows, count = listed(request, session, auth, v)
    body: dict[str, Any] = {"shares": [share_views.summary(request, s) for s in rows]}
    with_count(request, v, body, count)
    return body


@api.get("/shares/detail")
def list_shares_detail(request: Request, session: SessionDep, auth: OsAuthDep,
                       v: MicroversionDep) -> dict[str, Any]:
    rows, count = listed(request, session, auth, v)
    types = {t.id: t for t in session.exec(select(ShareType))}
    body: dict[str, Any] = {"shares": [
        share_views.detail(request, s, types.get(s.share_type_id), v, auth.is_admin)
        for s in rows]}
    with_count(request, v, body, count)
    return body


@api.get("/shares/{share_id}")
def show_share(share_id: str, request: Request, session: SessionDep, auth: OsAuthDep,
               v: MicroversionDep) -> dict[str, Any]:
    return {"share": detail_of(request, session, auth, visible(session, auth, share_id), v)}


@api.put("/shares/{share_id}")
def update_share(share_id: str, body: ShareUpdateBody, request: Request, session: SessionDep,
                 auth: OsWriterDep, v: MicroversionDep) -> dict[str, Any]:
    f = body.share
    share = service.update_share(
        session, auth, share_id, name=f.display_name if f.display_name is not None else f.name,
        description=f.display_description if f.display_description is not None
        else f.description,
        is_public=None if f.is_public is None else flag(f.is_public, "is_public"))
    return {"share": detail_of(request, session, auth, share, v)}


@api.delete("/shares/{share_id}", status_code=202)
async def delete_share(share_id: str, session: SessionDep, auth: OsWriterDep,
                       client: TemporalDep) -> Response:
    await service.delete_share(client, session, auth, share_id, None)
    return Response(status_code=202)


@api.get("/shares/{share_id}/export_locations")
def list_export_locations(share_id: str, session: SessionDep,
                          auth: OsAuthDep) -> dict[str, Any]:
    share = visible(session, auth, share_id)
    return {"export_locations": share_views.export_locations(share, auth.is_admin)}


@api.get("/shares/{share_id}/export_locations/{export_location_id}")
def show_export_location(share_id: str, export_location_id: str, session: SessionDep,
                         auth: OsAuthDep) -> dict[str, Any]:
    share = visible(session, auth, share_id)
    for row in share_views.export_locations(share, auth.is_admin):
        if row["id"] == export_location_id:
            return {"export_location": row}
    raise NotFound(f"Export location {export_location_id} not found for share {share_id}.")


@api.get("/shares/{share_id}/instances")
def list_share_instances(share_id: str, session: SessionDep, auth: OsAdminDep,
                         v: MicroversionDep) -> dict[str, Any]:
    share = service.get_share(session, auth, share_id)
    return {"share_instances": [share_views.instance(share, v)]}
