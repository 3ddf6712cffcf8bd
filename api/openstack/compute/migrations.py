"""Nova's os-migrations and server migrations (admin) over api/services/migrations.py:
/servers/{id}/migrations[/{id}] (2.23), abort (DELETE, 2.24), force_complete (2.22).

Shapes per microversion: migration_type and links from 2.23 (before it os-migrations
hides live migrations, as Nova), uuid and paging from 2.59, user_id/project_id from
2.80 (beyond the 2.79 served). Flavors have no integer ids in vmflow, so
old/new_instance_type_id are null; dest_host is the destination's underlay address."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.exceptions import HTTPException

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import OsAdminDep
from api.openstack.compute.listing import PREFIX, int_param, links, nova_time, page
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.migrations import MigrationPublic
from api.services import migrations
from api.services.servers import get_instance
from vmflow.models import Host, Instance, Migration

router = APIRouter(prefix=PREFIX)

FORCE_COMPLETE = Version(2, 22)
TYPED = Version(2, 23)
ABORT = Version(2, 24)
UUIDS = Version(2, 59)
OWNERS = Version(2, 80)


def _dest_host(session: Session, name: str | None) -> str | None:
    host = session.get(Host, name) if name else None
    return (host.migration_address or None) if host else None


def _common(session: Session, m: MigrationPublic, v: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id, "status": m.status, "source_node": m.source_node,
        "source_compute": m.source_compute, "dest_node": m.dest_node,
        "dest_compute": m.dest_compute, "dest_host": _dest_host(session, m.dest_compute),
        "created_at": nova_time(m.created_at), "updated_at": nova_time(m.updated_at)}
    if v >= UUIDS:
        out["uuid"] = m.uuid
    if v >= OWNERS:
        out |= {"user_id": m.user_id, "project_id": m.project_id}
    return out


def os_migration_view(request: Request, session: Session, m: MigrationPublic,
                      v: Version) -> dict[str, Any]:
    out = _common(session, m, v) | {"instance_uuid": m.server_uuid,
                                    "old_instance_type_id": None,
                                    "new_instance_type_id": None}
    if v >= TYPED:
        out["migration_type"] = m.migration_type
        if m.migration_type == migrations.LIVE and m.status in migrations.IN_PROGRESS:
            out["links"] = links(request, f"servers/{m.server_uuid}/migrations", str(m.id))
    return out


def server_migration_view(session: Session, m: MigrationPublic, v: Version) -> dict[str, Any]:
    return _common(session, m, v) | {
        "server_uuid": m.server_uuid,
        "memory_total_bytes": m.memory_total_bytes,
        "memory_processed_bytes": m.memory_processed_bytes,
        "memory_remaining_bytes": m.memory_remaining_bytes,
        "disk_total_bytes": m.disk_total_bytes, "disk_processed_bytes": m.disk_processed_bytes,
        "disk_remaining_bytes": m.disk_remaining_bytes}


@router.get("/os-migrations")
async def list_migrations(request: Request, session: SessionDep, auth: OsAdminDep,
                          client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    q = request.query_params
    mtype = q.get("migration_type")
    rows = migrations.listed(session, q.get("host") or q.get("source_compute"),
                             q.get("status"), q.get("instance_uuid"), mtype, 100000)
    if v < TYPED:
        rows = [m for m in rows if m.migration_type != migrations.LIVE]
    if v >= OWNERS:
        rows = [m for m in rows if q.get("user_id") in (None, m.user_id)
                and q.get("project_id") in (None, m.project_id)]
    nxt = None
    if v >= UUIDS:
        rows, nxt = page(request, rows, lambda m: m.uuid, "os-migrations")
    elif (limit := int_param(request, "limit")) is not None:
        rows = rows[:limit]
    body: dict[str, Any] = {"migrations": [
        os_migration_view(request, session, await migrations.live_view(client, m), v)
        for m in rows]}
    if nxt:
        body["migrations_links"] = nxt
    return body


def _since(v: Version, minimum: Version) -> None:
    if v < minimum:
        raise HTTPException(404, "The resource could not be found.")


def _instance_and_id(session: Session, auth: Any, server_id: str,
                     migration_id: str) -> tuple[Instance, int]:
    inst = get_instance(session, auth, server_id)
    if not migration_id.isdigit():
        raise NotFound(f"Migration {migration_id} for server {server_id} could not be found.")
    return inst, int(migration_id)


@router.get("/servers/{server_id}/migrations")
async def list_server_migrations(server_id: str, session: SessionDep, auth: OsAdminDep,
                                 client: MaybeTemporalDep,
                                 v: MicroversionDep) -> dict[str, Any]:
    """The server's live migrations in progress."""
    _since(v, TYPED)
    inst = get_instance(session, auth, server_id)
    return {"migrations": [server_migration_view(session, await migrations.live_view(client, m),
                                                 v)
                           for m in migrations.of_server(session, inst)]}


@router.get("/servers/{server_id}/migrations/{migration_id}")
async def show_server_migration(server_id: str, migration_id: str, session: SessionDep,
                                auth: OsAdminDep, client: MaybeTemporalDep,
                                v: MicroversionDep) -> dict[str, Any]:
    _since(v, TYPED)
    inst, mid = _instance_and_id(session, auth, server_id, migration_id)
    m: Migration = migrations.get_of_server(session, inst, mid)
    return {"migration": server_migration_view(session, await migrations.live_view(client, m),
                                               v)}


@router.delete("/servers/{server_id}/migrations/{migration_id}", status_code=202)
async def abort_server_migration(server_id: str, migration_id: str, session: SessionDep,
                                 auth: OsAdminDep, client: MaybeTemporalDep,
                                 v: MicroversionDep) -> Response:
    _since(v, ABORT)
    inst, mid = _instance_and_id(session, auth, server_id, migration_id)
    await migrations.abort(client, session, auth, inst, mid)
    return Response(status_code=202)


@router.post("/servers/{server_id}/migrations/{migration_id}/action", status_code=202)
async def server_migration_action(server_id: str, migration_id: str, body: dict[str, Any],
                                  session: SessionDep, auth: OsAdminDep,
                                  client: MaybeTemporalDep, v: MicroversionDep) -> Response:
    """{"force_complete": null}."""
    _since(v, FORCE_COMPLETE)
    if set(body) != {"force_complete"} or body["force_complete"] is not None:
        raise BadRequest("Invalid input: the body is {\"force_complete\": null}")
    inst, mid = _instance_and_id(session, auth, server_id, migration_id)
    await migrations.force_complete(client, session, auth, inst, mid)
    return Response(status_code=202)
