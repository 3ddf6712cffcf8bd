"""Backup schedules of a server: the rows and their Temporal Schedules.

The logic behind api/routers/backup_schedules.py: the row and its Temporal Schedule
(vmflow/backup_schedules.py), made, shown, paused, triggered and deleted.

The row is written first and the Temporal Schedule made from it; when Temporal
refuses, the row goes again, so a bad request leaves nothing behind. Deleting goes
the other way (the Temporal Schedule, then the row).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.backup_schedules import BackupScheduleCreate, BackupSchedulePublic
from api.services.guards import user_name
from api.services.operations import remember_key
from api.services.servers import get_instance
from vmflow import backup_schedules
from vmflow.models import BackupSchedule, Instance

RESOURCE = "backup-schedule"
MAX_PER_SERVER = 16
ACTIONS = ("pause", "unpause", "trigger")


def get_schedule(session: Session, auth: AuthContext, server_id: str,
                 sid: str) -> tuple[Instance, BackupSchedule]:
    inst = get_instance(session, auth, server_id)
    row = session.get(BackupSchedule, sid)
    if row is None or row.instance_id != inst.id:
        raise NotFound(f"backup schedule {sid} of server {server_id} not found")
    return inst, row


def _unavailable(e: Exception, doing: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"could not {doing}: {e}", type="TemporalUnavailable")


async def view(client: Client | None, row: BackupSchedule) -> BackupSchedulePublic:
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


def listed(session: Session, auth: AuthContext, server_id: str) -> list[BackupSchedule]:
    inst = get_instance(session, auth, server_id)
    return list(session.exec(select(BackupSchedule)
                             .where(BackupSchedule.instance_id == inst.id)
                             .order_by(col(BackupSchedule.created_at))))


async def create(client: Client, session: Session, auth: AuthContext, server_id: str,
                 body: BackupScheduleCreate, idempotency_key: str | None) -> BackupSchedule:
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
    return row


async def delete(client: Client, session: Session, auth: AuthContext, server_id: str,
                 sid: str, idempotency_key: str | None) -> None:
    _, row = get_schedule(session, auth, server_id, sid)
    try:
        await backup_schedules.remove(client, row.instance_id, row.id)
    except (RPCError, RuntimeError) as e:
        raise _unavailable(e, "delete the Temporal Schedule") from e
    session.delete(row)
    remember_key(session, auth, idempotency_key, RESOURCE, sid, "delete")
    session.commit()


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


async def act(client: Client, session: Session, auth: AuthContext, row: BackupSchedule,
              action: str, idempotency_key: str | None) -> None:
    """pause, unpause or trigger, remembered under the Idempotency-Key."""
    await _run_action(client, session, auth, row, action)
    if action != "trigger":
        row.paused = action == "pause"
        session.add(row)
    remember_key(session, auth, idempotency_key, RESOURCE, row.id, action)
    session.commit()


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
