"""Backup schedules of a server: createBackup on a timetable, each one a Temporal
Schedule (vmflow/backup_schedules.py) with overlap SKIP.

    POST   /v1/servers/{id}/backup-schedules {every | cron, backup_type, rotation} -> 201
    GET    /v1/servers/{id}/backup-schedules
    GET    /v1/servers/{id}/backup-schedules/{sid}     (with next and last run)
    DELETE /v1/servers/{id}/backup-schedules/{sid}     -> 204
    POST   /v1/servers/{id}/backup-schedules/{sid}/action
           {"pause": null} | {"unpause": null} -> 200; {"trigger": null} -> 202

The logic is in api/services/backup_schedules.py, the models in
api/schemas/backup_schedules.py. A schedule is configuration,
not an instance action: the server's lock does not stop it (a backup ignores the
lock too). Deleting the server removes its schedules (DeleteInstance).

Idempotency-Key rows use resource type "backup-schedule", so they never show in the
server's action history; each tick's backup does (action "backup").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, TemporalDep, WriterDep
from api.schemas.backup_schedules import (
    BackupScheduleCreate,
    BackupScheduleList,
    BackupSchedulePublic,
)
from api.services import backup_schedules as service
from api.services.backup_schedules import RESOURCE, get_schedule, parse_schedule_action
from api.services.operations import find_idempotent, idempotency_guard

router = APIRouter(prefix="/v1/servers", tags=["backup schedules"])


@router.post("/{server_id}/backup-schedules", status_code=201,
             response_model=BackupSchedulePublic)
async def create_schedule(server_id: str, body: BackupScheduleCreate, session: SessionDep,
                          auth: WriterDep, client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> BackupSchedulePublic:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, RESOURCE, "create")
        if earlier is not None:
            _, row = get_schedule(session, auth, server_id, earlier.resource_id)
            return BackupSchedulePublic.of(row)
        return BackupSchedulePublic.of(await service.create(
            client, session, auth, server_id, body, idempotency_key))


@router.get("/{server_id}/backup-schedules", response_model=BackupScheduleList)
def list_schedules(server_id: str, session: SessionDep, auth: AuthDep) -> BackupScheduleList:
    return BackupScheduleList(backup_schedules=[
        BackupSchedulePublic.of(r) for r in service.listed(session, auth, server_id)])


@router.get("/{server_id}/backup-schedules/{sid}", response_model=BackupSchedulePublic)
async def show_schedule(server_id: str, sid: str, session: SessionDep, auth: AuthDep,
                        client: MaybeTemporalDep) -> BackupSchedulePublic:
    _, row = get_schedule(session, auth, server_id, sid)
    return await service.view(client, row)


@router.delete("/{server_id}/backup-schedules/{sid}", status_code=204)
async def delete_schedule(server_id: str, sid: str, session: SessionDep, auth: WriterDep,
                          client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> Response:
    async with idempotency_guard(auth, idempotency_key):
        if not find_idempotent(session, auth, idempotency_key, RESOURCE, "delete", sid):
            await service.delete(client, session, auth, server_id, sid, idempotency_key)
        return Response(status_code=204)


@router.post("/{server_id}/backup-schedules/{sid}/action", response_model=BackupSchedulePublic)
async def schedule_action(server_id: str, sid: str, response: Response, session: SessionDep,
                          auth: WriterDep, client: TemporalDep,
                          body: Annotated[Any, Body()],
                          idempotency_key: IdempotencyKey = None) -> BackupSchedulePublic:
    """pause and unpause answer 200 with the schedule; trigger (a tick now, paused or
    not; overlap SKIP still holds) answers 202: the backup shows in the server's
    action history."""
    action = parse_schedule_action(body)
    response.status_code = 202 if action == "trigger" else 200
    async with idempotency_guard(auth, idempotency_key):
        replay = find_idempotent(session, auth, idempotency_key, RESOURCE, action, sid)
        _, row = get_schedule(session, auth, server_id, sid)
        if replay is None:
            await service.act(client, session, auth, row, action, idempotency_key)
        return await service.view(client, row)
