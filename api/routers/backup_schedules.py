"""Backup schedules of a server: createBackup on a timetable, each one a Temporal
Schedule (vmflow/backup_schedules.py) with overlap SKIP.

    POST   /v1/servers/{id}/backup-schedules {every | cron, backup_type, rotation} -> 201
    GET    /v1/servers/{id}/backup-schedules
    GET    /v1/servers/{id}/backup-schedules/{sid}     (with next and last run)
    DELETE /v1/servers/{id}/backup-schedules/{sid}     -> 204
    POST   /v1/servers/{id}/backup-schedules/{sid}/action
           {"pause": null} | {"unpause": null} -> 200; {"trigger": null} -> 202

The row is written first and the Temporal Schedule made from it; when Temporal
refuses, the row goes again, so a bad request leaves nothing behind. Deleting goes
the other way (the Temporal Schedule, then the row). A schedule is configuration,
not an instance action: the server's lock does not stop it (a backup ignores the
lock too). Deleting the server removes its schedules (DeleteInstance).

Idempotency-Key rows use resource type "backup-schedule", so they never show in the
server's action history; each tick's backup does (action "backup").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, TemporalDep, WriterDep
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.common import Request, utc
from api.services.guards import user_name
from api.services.operations import find_idempotent, idempotency_guard, remember_key
from api.services.servers import get_instance
from vmflow import backup_schedules
from vmflow.models import BackupSchedule, Instance
from vmflow.names import backup_schedule_id

router = APIRouter(prefix="/v1/servers", tags=["backup schedules"])

RESOURCE = "backup-schedule"
MAX_PER_SERVER = 16
MAX_ROTATION = 1000
ACTIONS = ("pause", "unpause", "trigger")
# printable, no leading or trailing space: it becomes part of image names
BACKUP_TYPE = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?")


class BackupScheduleCreate(Request):
    every: str | None = Field(default=None, max_length=16,
                              description='N minutes, hours or days: "30m", "6h", "1d"')
    cron: str | None = Field(default=None, max_length=255,
                             description='5 fields, UTC: "0 3 * * *"')
    backup_type: str = Field(min_length=1, max_length=255, description='e.g. "daily"')
    rotation: int = Field(ge=1, le=MAX_ROTATION,
                          description="keep this many backups of this type")

    @field_validator("backup_type")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not BACKUP_TYPE.fullmatch(v):
            raise ValueError("backup_type is printable text without leading or trailing "
                             "spaces")
        return v

    @model_validator(mode="after")
    def _one_timetable(self) -> BackupScheduleCreate:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every and cron")
        try:
            if self.every is not None:
                backup_schedules.parse_every(self.every)
            else:
                assert self.cron is not None
                self.cron = backup_schedules.check_cron(self.cron)
        except backup_schedules.InvalidSpec as e:
            raise ValueError(str(e)) from None
        return self


class BackupSchedulePublic(BaseModel):
    id: str
    server_id: str
    project_id: str
    user_id: str
    every: str | None
    cron: str | None
    backup_type: str
    rotation: int
    paused: bool
    created_at: datetime
    schedule_id: str  # the Temporal Schedule (Web UI: Schedules)
    # from Temporal, on show (None when it cannot be asked)
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    running: int | None = None  # ticks running now (0 or 1: overlap SKIP)

    @classmethod
    def of(cls, row: BackupSchedule) -> BackupSchedulePublic:
        return cls(id=row.id, server_id=row.instance_id, project_id=row.project_id,
                   user_id=row.user_id, every=row.every, cron=row.cron,
                   backup_type=row.backup_type, rotation=row.rotation, paused=row.paused,
                   created_at=utc(row.created_at),
                   schedule_id=backup_schedule_id(row.instance_id, row.id))


class BackupScheduleList(BaseModel):
    backup_schedules: list[BackupSchedulePublic]


def get_schedule(session: Session, auth: AuthContext, server_id: str,
                 sid: str) -> tuple[Instance, BackupSchedule]:
    inst = get_instance(session, auth, server_id)
    row = session.get(BackupSchedule, sid)
    if row is None or row.instance_id != inst.id:
        raise NotFound(f"backup schedule {sid} of server {server_id} not found")
    return inst, row


def _unavailable(e: Exception, doing: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"could not {doing}: {e}", type="TemporalUnavailable")


async def _view(client: Client | None, row: BackupSchedule) -> BackupSchedulePublic:
    view = BackupSchedulePublic.of(row)
    if client is None:
        return view
    try:
        desc = await backup_schedules.describe(client, row)
    except RPCError:
        return view
    if desc is not None:
        view.paused = desc.schedule.state.paused
        nxt = desc.info.next_action_times
        view.next_run_at = nxt[0] if nxt and not view.paused else None
        recent = desc.info.recent_actions
        view.last_run_at = recent[-1].started_at if recent else None
        view.running = len(desc.info.running_actions)
    return view


# ---- routes ----------------------------------------------------------------------------


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
        inst = get_instance(session, auth, server_id)
        if inst.task_state == "deleting":
            raise Conflict(f"server {inst.id} is being deleted", type="ActionNotAllowed")
        have = len(session.exec(select(BackupSchedule.id)
                                .where(BackupSchedule.instance_id == inst.id)).all())
        if have >= MAX_PER_SERVER:
            raise BadRequest(f"a server has at most {MAX_PER_SERVER} backup schedules",
                             type="BackupScheduleLimitExceeded")
        row = BackupSchedule(instance_id=inst.id, project_id=inst.project_id,
                             user_id=auth.user_id, every=body.every, cron=body.cron,
                             backup_type=body.backup_type, rotation=body.rotation)
        session.add(row)
        session.commit()
        try:
            await backup_schedules.create(client, row)
        except Exception as e:
            session.delete(row)
            session.commit()
            if isinstance(e, RPCError) and e.status == RPCStatusCode.INVALID_ARGUMENT:
                raise BadRequest(f"Temporal refused the schedule: {e.message}",
                                 type="InvalidSchedule") from e
            if isinstance(e, RPCError | RuntimeError):
                raise _unavailable(e, "create the Temporal Schedule") from e
            raise
        remember_key(session, auth, idempotency_key, RESOURCE, row.id, "create")
        session.commit()
        return BackupSchedulePublic.of(row)


@router.get("/{server_id}/backup-schedules", response_model=BackupScheduleList)
def list_schedules(server_id: str, session: SessionDep, auth: AuthDep) -> BackupScheduleList:
    inst = get_instance(session, auth, server_id)
    rows = session.exec(select(BackupSchedule).where(BackupSchedule.instance_id == inst.id)
                        .order_by(col(BackupSchedule.created_at)))
    return BackupScheduleList(backup_schedules=[BackupSchedulePublic.of(r) for r in rows])


@router.get("/{server_id}/backup-schedules/{sid}", response_model=BackupSchedulePublic)
async def show_schedule(server_id: str, sid: str, session: SessionDep, auth: AuthDep,
                        client: MaybeTemporalDep) -> BackupSchedulePublic:
    _, row = get_schedule(session, auth, server_id, sid)
    return await _view(client, row)


@router.delete("/{server_id}/backup-schedules/{sid}", status_code=204)
async def delete_schedule(server_id: str, sid: str, session: SessionDep, auth: WriterDep,
                          client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> Response:
    async with idempotency_guard(auth, idempotency_key):
        if find_idempotent(session, auth, idempotency_key, RESOURCE, "delete", sid):
            return Response(status_code=204)
        _, row = get_schedule(session, auth, server_id, sid)
        try:
            await backup_schedules.remove(client, row.instance_id, row.id)
        except (RPCError, RuntimeError) as e:
            raise _unavailable(e, "delete the Temporal Schedule") from e
        session.delete(row)
        remember_key(session, auth, idempotency_key, RESOURCE, sid, "delete")
        session.commit()
        return Response(status_code=204)


def parse_schedule_action(body: Any) -> str:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest('the body must be an object with exactly one action key: '
                         '{"pause": null}, {"unpause": null} or {"trigger": null}',
                         type="ValidationError")
    ((key, value),) = body.items()
    if key not in ACTIONS:
        raise BadRequest(f"unknown action {key!r}; known: {', '.join(ACTIONS)}",
                         type="UnknownAction")
    if value not in (None, {}):
        raise BadRequest(f"action {key} takes no arguments (null or {{}})",
                         type="ValidationError")
    return str(key)


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
            await _run_action(client, session, auth, row, action)
            if action != "trigger":
                row.paused = action == "pause"
                session.add(row)
            remember_key(session, auth, idempotency_key, RESOURCE, sid, action)
            session.commit()
        return await _view(client, row)


async def _run_action(client: Client, session: Session, auth: AuthContext,
                      row: BackupSchedule, action: str) -> None:
    """On Temporal; a Temporal Schedule that went missing (its store was reset) is made
    again from the row first."""
    for attempt in (1, 2):
        try:
            if action == "trigger":
                await backup_schedules.trigger(client, row)
            else:
                await backup_schedules.set_paused(client, row, action == "pause",
                                                  f"{action}d by {user_name(session, auth)}")
            return
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND or attempt == 2:
                raise _unavailable(e, f"{action} the Temporal Schedule") from e
            try:
                await backup_schedules.create(client, row)
            except RPCError as again:
                raise _unavailable(again, "make the Temporal Schedule again") from again
        except RuntimeError as e:
            raise _unavailable(e, f"{action} the Temporal Schedule") from e
