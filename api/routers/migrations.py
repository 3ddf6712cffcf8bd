"""Migrations (admin): a server's live migrations in progress, abort and force-complete
(Nova's server migrations), and every migration (Nova's os-migrations). The logic is
in api/services/migrations.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import AdminDep, IdempotencyKey, MaybeTemporalDep, SessionDep
from api.schemas.migrations import MigrationAction, MigrationList, MigrationPublic
from api.services import migrations
from api.services.operations import idempotency_guard
from api.services.servers import get_instance

router = APIRouter(tags=["migrations"])
Status = Literal["queued", "preparing", "running", "post-migrating", "completed", "failed",
                 "cancelled", "error", "pre-migrating", "migrating", "finished", "confirming",
                 "confirmed", "reverting", "reverted", "accepted", "done"]


@router.get("/v1/servers/{server_id}/migrations", response_model=MigrationList)
async def list_server_migrations(server_id: str, session: SessionDep, auth: AdminDep,
                                 client: MaybeTemporalDep) -> MigrationList:
    inst = get_instance(session, auth, server_id)
    return MigrationList(migrations=[await migrations.live_view(client, m)
                                     for m in migrations.of_server(session, inst)])


@router.get("/v1/servers/{server_id}/migrations/{migration_id}",
            response_model=MigrationPublic)
async def show_server_migration(server_id: str, migration_id: int, session: SessionDep,
                                auth: AdminDep, client: MaybeTemporalDep) -> MigrationPublic:
    inst = get_instance(session, auth, server_id)
    return await migrations.live_view(client, migrations.get_of_server(session, inst,
                                                                       migration_id))


@router.delete("/v1/servers/{server_id}/migrations/{migration_id}", status_code=202,
               response_model=MigrationPublic)
async def abort_migration(server_id: str, migration_id: int, session: SessionDep,
                          auth: AdminDep, client: MaybeTemporalDep,
                          idempotency_key: IdempotencyKey = None) -> MigrationPublic:
    """The source aborts the job; the guest stays on the source and the destination is
    cleaned (the operation ends compensated)."""
    inst = get_instance(session, auth, server_id)
    async with idempotency_guard(auth, idempotency_key):
        return migrations.view(await migrations.abort(client, session, auth, inst,
                                                      migration_id, idempotency_key))


@router.post("/v1/servers/{server_id}/migrations/{migration_id}/action", status_code=202,
             response_model=MigrationPublic)
async def migration_action(server_id: str, migration_id: int, body: MigrationAction,
                           session: SessionDep, auth: AdminDep,
                           client: MaybeTemporalDep,
                           idempotency_key: IdempotencyKey = None) -> MigrationPublic:
    """{"force_complete": null}: the guest is paused on the source until the job has
    converged, and runs again on the destination."""
    inst = get_instance(session, auth, server_id)
    async with idempotency_guard(auth, idempotency_key):
        return migrations.view(await migrations.force_complete(
            client, session, auth, inst, migration_id, idempotency_key))


@router.get("/v1/os-migrations", response_model=MigrationList)
async def list_migrations(
    session: SessionDep, auth: AdminDep, client: MaybeTemporalDep,
    host: str | None = None, status: Status | None = None, instance_uuid: str | None = None,
    migration_type: Literal["resize", "migration", "live-migration", "evacuation"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MigrationList:
    rows = migrations.listed(session, host, status, instance_uuid, migration_type, limit)
    return MigrationList(migrations=[await migrations.live_view(client, m) for m in rows])
