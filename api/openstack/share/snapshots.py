"""Manila's share snapshots: create, list (summary and detail), show, update, delete,
and the admin actions reset_status and force_delete (also os- prefixed). A facade
over api/services/share_snapshots.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Request, Response
from pydantic import Field, ValidationError
from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.deps import SessionDep, TemporalDep
from api.errors import BadRequest, Forbidden
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.microversion import MicroversionDep, Version
from api.openstack.share.base import flag, links, page, router, stamp
from api.schemas.share_snapshots import SnapshotCreate
from api.services import share_snapshots as service
from api.services.shares import get_snapshot
from vmflow.models import Share, ShareSnapshot

api = router()


class SnapshotFields(Lenient):
    share_id: str = Field(max_length=255)
    force: bool | str = False
    name: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    display_description: str | None = Field(default=None, max_length=255)
    metadata: dict[str, Any] | None = None


class SnapshotBody(Lenient):
    snapshot: SnapshotFields


class SnapshotUpdateFields(Lenient):
    name: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    display_description: str | None = Field(default=None, max_length=255)


class SnapshotUpdateBody(Lenient):
    snapshot: SnapshotUpdateFields


class ResetStatus(Lenient):
    status: str = Field(max_length=255)


def detail(request: Request, session: Session, snap: ShareSnapshot,
           v: Version) -> dict[str, Any]:
    share = session.get(Share, snap.share_id)
    d: dict[str, Any] = {
        "id": snap.id, "share_id": snap.share_id, "share_size": share.size_gb if share
        else snap.size_gb, "created_at": stamp(snap.created_at), "status": snap.status,
        "name": snap.name or None, "description": snap.description, "size": snap.size_gb,
        "share_proto": share.share_proto if share else "NFS",
        "links": links(request, "snapshots", snap.id)}
    if v >= Version(2, 17):
        d |= {"project_id": snap.project_id, "user_id": snap.user_id}
    if v >= Version(2, 73):
        d["metadata"] = {}
    return d


def summary(request: Request, snap: ShareSnapshot) -> dict[str, Any]:
    return {"id": snap.id, "name": snap.name or None,
            "links": links(request, "snapshots", snap.id)}


@api.post("/snapshots", status_code=202)
async def create_snapshot(body: SnapshotBody, request: Request, session: SessionDep,
                          auth: OsWriterDep, client: TemporalDep,
                          v: MicroversionDep) -> dict[str, Any]:
    f = body.snapshot
    flag(f.force, "force")  # a valid boolean; vmflow snapshots available shares only
    if f.metadata:
        raise BadRequest("share snapshot metadata is not supported by vmflow",
                         type="NotSupported")
    # the v1 model's name rule aside: Manila's name is optional ("" shows as null)
    create = SnapshotCreate.model_construct(share_id=f.share_id,
                                            name=f.name or f.display_name or "")
    snap, _ = await service.create(client, session, auth, create, None,
                                   description=f.description or f.display_description)
    return {"snapshot": detail(request, session, snap, v)}


SORT_KEYS: dict[str, Callable[[ShareSnapshot], Any]] = {
    "id": lambda s: s.id, "status": lambda s: s.status, "size": lambda s: s.size_gb,
    "share_id": lambda s: s.share_id, "user_id": lambda s: s.user_id,
    "project_id": lambda s: s.project_id, "created_at": lambda s: s.created_at,
    "updated_at": lambda s: s.updated_at, "name": lambda s: s.name,
    "display_name": lambda s: s.name,
}


def listed(request: Request, session: Session, auth: AuthContext) -> list[ShareSnapshot]:
    q = request.query_params
    stmt = select(ShareSnapshot)
    if not (auth.is_admin and "all_tenants" in q and flag(q["all_tenants"] or "1",
                                                          "all_tenants")):
        stmt = stmt.where(col(ShareSnapshot.project_id) == auth.project_id)
    rows = [s for s in session.exec(stmt)
            if all(q[k] == val for k, val in (("name", s.name), ("status", s.status),
                                                ("share_id", s.share_id)) if k in q)
            and ("name~" not in q or q["name~"].lower() in s.name.lower())]
    return page(request, rows, SORT_KEYS)[0]


@api.get("/snapshots")
def list_snapshots(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return {"snapshots": [summary(request, s) for s in listed(request, session, auth)]}


@api.get("/snapshots/detail")
def list_snapshots_detail(request: Request, session: SessionDep, auth: OsAuthDep,
                          v: MicroversionDep) -> dict[str, Any]:
    return {"snapshots": [detail(request, session, s, v)
                          for s in listed(request, session, auth)]}


@api.get("/snapshots/{snapshot_id}")
def show_snapshot(snapshot_id: str, request: Request, session: SessionDep, auth: OsAuthDep,
                  v: MicroversionDep) -> dict[str, Any]:
    return {"snapshot": detail(request, session, get_snapshot(session, auth, snapshot_id), v)}


@api.put("/snapshots/{snapshot_id}")
def update_snapshot(snapshot_id: str, body: SnapshotUpdateBody, request: Request,
                    session: SessionDep, auth: OsWriterDep,
                    v: MicroversionDep) -> dict[str, Any]:
    f = body.snapshot
    snap = service.update(
        session, auth, snapshot_id,
        name=f.display_name if f.display_name is not None else f.name,
        description=f.display_description if f.display_description is not None
        else f.description)
    return {"snapshot": detail(request, session, snap, v)}


@api.delete("/snapshots/{snapshot_id}", status_code=202)
async def delete_snapshot(snapshot_id: str, session: SessionDep, auth: OsWriterDep,
                          client: TemporalDep) -> Response:
    await service.delete(client, session, auth, snapshot_id, None)
    return Response(status_code=202)


@api.post("/snapshots/{snapshot_id}/action", status_code=202)
async def snapshot_action(snapshot_id: str, body: Annotated[Any, Body()],
                          session: SessionDep, auth: OsWriterDep,
                          client: TemporalDep) -> Response:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: exactly one action is expected")
    ((key, value),) = body.items()
    action = key.removeprefix("os-")
    if action not in ("reset_status", "force_delete"):
        raise BadRequest(f"There is no such action: {key}")
    if not auth.is_admin:
        raise Forbidden(f"Policy doesn't allow share_snapshot:{action} to be performed.")
    get_snapshot(session, auth, snapshot_id)
    if action == "force_delete":
        await service.force_delete(client, session, auth, snapshot_id)
        return Response(status_code=202)
    try:
        args = ResetStatus.model_validate(value if isinstance(value, dict) else {})
    except ValidationError:
        raise BadRequest("reset_status needs a status", type="InvalidInput") from None
    await service.reset_status(client, session, auth, snapshot_id, args.status)
    return Response(status_code=202)
