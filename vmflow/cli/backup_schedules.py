"""`vmflow server backup-schedule ...`: createBackup on a timetable (a Temporal
Schedule per schedule, overlap SKIP): create, list, show, delete, pause, unpause,
trigger (a backup now, optionally followed to its end)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    ApiError,
    Column,
    JsonOpt,
    ServerArg,
    WaitOpt,
    calls,
    col,
    emit,
    err,
    fmt,
    follow,
    is_uuid,
    kv_table,
    list_table,
    out,
    seg,
    server_id,
)

backup_schedule_app = typer.Typer(
    no_args_is_help=True,
    help="Backup schedules of a server: createBackup every N minutes/hours/days or on a "
         "cron line (UTC); a tick while the previous backup still runs is skipped.")

ScheduleArg = Annotated[str, typer.Argument(metavar="SCHEDULE",
                                            help="Schedule id (or a unique prefix of it).")]
TRIGGER_APPEARS_S = 60.0
POLL_S = 0.5


def timetable(row: dict[str, Any]) -> str:
    return f"every {row['every']}" if row.get("every") else f"cron {row.get('cron')}"


COLUMNS: list[Column] = [
    ("ID", col("id")), ("Timetable", lambda r: escape(timetable(r))),
    ("Type", col("backup_type")), ("Rotation", col("rotation")), ("Paused", col("paused")),
    ("Created", col("created_at")),
]


def base(sid: str) -> str:
    return f"/v1/servers/{sid}/backup-schedules"


def schedule_id(api: Api, sid: str, ref: str) -> str:
    """A full id as it is; else the one schedule of the server whose id starts with it."""
    if is_uuid(ref):
        return ref
    rows = api.items(base(sid), "backup_schedules")
    found = [r["id"] for r in rows if str(r["id"]).startswith(ref)]
    if len(found) != 1:
        raise ApiError(f"{'no' if not found else len(found)} backup schedules of server {sid} "
                       f"match {ref!r}" + (f": {', '.join(found)}" if found else ""))
    return str(found[0])


def show(data: Any, as_json: bool) -> None:
    emit(data, as_json, lambda: kv_table(data))


@backup_schedule_app.command("create")
@calls("POST /v1/servers/{server_id}/backup-schedules")
def create(
    server: ServerArg,
    backup_type: Annotated[str, typer.Option("--type", help="Backup type, e.g. daily; "
                                             "rotation counts backups per type.")],
    rotation: Annotated[int, typer.Option(min=1, help="Keep the newest N backups of the "
                                                      "type.")],
    every: Annotated[str | None, typer.Option(help="Interval: 30m, 6h, 1d.")] = None,
    cron: Annotated[str | None, typer.Option(help="5-field cron line in UTC, e.g. "
                                                  "'0 3 * * *'.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Back a server up on a timetable (give --every or --cron)."""
    if (every is None) == (cron is None):
        raise typer.BadParameter("give exactly one of --every and --cron",
                                 param_hint="--every/--cron")
    body: dict[str, Any] = {"backup_type": backup_type, "rotation": rotation}
    body.update({"every": every} if every is not None else {"cron": cron})
    api = Api()
    sid = server_id(api, server)
    show(api.call("POST", base(sid), json=body), as_json)


@backup_schedule_app.command("list")
@calls("GET /v1/servers/{server_id}/backup-schedules")
def list_(server: ServerArg, as_json: JsonOpt = False) -> None:
    """A server's backup schedules."""
    api = Api()
    rows = api.items(base(server_id(api, server)), "backup_schedules")
    emit(rows, as_json, lambda: list_table(rows, COLUMNS) if rows else "no backup schedules")


@backup_schedule_app.command("show")
@calls("GET /v1/servers/{server_id}/backup-schedules/{sid}")
def show_one(server: ServerArg, schedule: ScheduleArg, as_json: JsonOpt = False) -> None:
    """One schedule, with its next and last run from Temporal."""
    api = Api()
    sid = server_id(api, server)
    show(api.get(f"{base(sid)}/{seg(schedule_id(api, sid, schedule))}"), as_json)


@backup_schedule_app.command("delete")
@calls("DELETE /v1/servers/{server_id}/backup-schedules/{sid}")
def delete(server: ServerArg, schedule: ScheduleArg) -> None:
    """Delete a schedule (its Temporal Schedule too); backups made stay."""
    api = Api()
    sid = server_id(api, server)
    sched = schedule_id(api, sid, schedule)
    api.call("DELETE", f"{base(sid)}/{seg(sched)}")
    out().print(f"deleted backup schedule {sched} of server {sid}")


def schedule_action(server: str, schedule: str, key: str) -> tuple[Api, str, str, Any]:
    api = Api()
    sid = server_id(api, server)
    sched = schedule_id(api, sid, schedule)
    return api, sid, sched, api.call("POST", f"{base(sid)}/{seg(sched)}/action",
                                     json={key: None})


@backup_schedule_app.command("pause")
@calls("POST /v1/servers/{server_id}/backup-schedules/{sid}/action")
def pause(server: ServerArg, schedule: ScheduleArg, as_json: JsonOpt = False) -> None:
    """No ticks until unpaused (trigger still works)."""
    show(schedule_action(server, schedule, "pause")[3], as_json)


@backup_schedule_app.command("unpause")
@calls("POST /v1/servers/{server_id}/backup-schedules/{sid}/action")
def unpause(server: ServerArg, schedule: ScheduleArg, as_json: JsonOpt = False) -> None:
    """Tick again on the timetable."""
    show(schedule_action(server, schedule, "unpause")[3], as_json)


def backup_actions(api: Api, sid: str) -> list[dict[str, Any]]:
    return [a for a in api.items(f"/v1/servers/{sid}/actions", "actions")
            if a.get("action") == "backup"]


@backup_schedule_app.command("trigger")
@calls("POST /v1/servers/{server_id}/backup-schedules/{sid}/action",
       "GET /v1/servers/{server_id}/actions")
def trigger(server: ServerArg, schedule: ScheduleArg, wait: WaitOpt = False,
            as_json: JsonOpt = False) -> None:
    """A tick now, paused or not. With --wait, follow the backup it starts to its end
    (exit 1 if it fails or is skipped)."""
    api = Api()
    sid = server_id(api, server)
    sched = schedule_id(api, sid, schedule)
    seen = {a.get("operation_id") for a in backup_actions(api, sid)} if wait else set()
    resp = api.call("POST", f"{base(sid)}/{seg(sched)}/action", json={"trigger": None})
    if not wait:
        emit(resp, as_json, lambda: f"triggered backup schedule {sched} of server {sid}; "
                                    f"the backup shows in: vmflow server actions {sid}")
        return
    deadline = time.monotonic() + TRIGGER_APPEARS_S
    while True:
        new = [a for a in backup_actions(api, sid) if a.get("operation_id") not in seen]
        if new:
            break
        if time.monotonic() > deadline:
            err().print(f"[red]no backup started within {TRIGGER_APPEARS_S:.0f}s; a tick of "
                        "this schedule may still be running (overlap SKIP skips a trigger "
                        "then)[/red]")
            raise typer.Exit(1)
        time.sleep(POLL_S)
    action = new[-1]
    if action.get("result") == "skipped":
        emit(action, as_json, lambda: f"backup of server {sid}: skipped")
        err().print(f"[red]{escape(fmt(action.get('fault')))}[/red]")
        raise typer.Exit(1)
    op = {"id": action["operation_id"], "workflow_id": action.get("workflow_id"),
          "status": action.get("result")}
    follow(api, op, f"backup of server {sid}", True, as_json)
