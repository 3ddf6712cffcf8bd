"""`vmflow share ...`: Manila-style shares over the HTTP API (create, list, show,
delete, force-delete, extend, shrink, reset-status, access rules, snapshots, share
types, quotas). --wait follows an operation (or an access rule) to its end."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vmflow.cli import common
from vmflow.cli.common import (
    Api,
    ApiError,
    Column,
    JsonOpt,
    WaitOpt,
    calls,
    col,
    emit,
    err,
    find_by_name,
    follow,
    follow_create,
    is_uuid,
    kv_table,
    list_table,
    styled,
)

share_app = typer.Typer(no_args_is_help=True, help="Shared file systems (Manila-style, NFS).")

ShareArg = Annotated[str, typer.Argument(metavar="SHARE", help="Share id or unique name.")]
SHARE_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("Size", col("size")),
    ("Status", col("status", styled)), ("Access", col("access_rules_status", styled)),
    ("Type", col("share_type_name")), ("Export", col("export_locations")),
]
RULE_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Type", col("access_type")), ("To", col("access_to")),
    ("Level", col("access_level")), ("State", col("state", styled)), ("Fault", col("fault")),
]
SNAPSHOT_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("Share", col("share_id")), ("Size", col("size")),
    ("Status", col("status", styled)),
]
# an access rule is settled once it has left these (active, error, or gone)
RULE_PENDING = frozenset({"queued_to_apply", "applying", "queued_to_deny", "denying"})
RULE_WAIT_S = 600.0


def share_id(api: Api, ref: str) -> str:
    if is_uuid(ref):
        return ref
    return str(find_by_name(api.items("/v1/shares", "shares"), ref, "share")["id"])


def snapshot_id(api: Api, ref: str) -> str:
    if is_uuid(ref):
        return ref
    snaps = api.items("/v1/share-snapshots", "snapshots")
    return str(find_by_name(snaps, ref, "share snapshot")["id"])


def action(api: Api, ref: str, body: dict[str, Any]) -> tuple[str, Any]:
    sid = share_id(api, ref)
    return sid, api.call("POST", f"/v1/shares/{sid}/action", json=body)


# ---- shares ---------------------------------------------------------------------------


@share_app.command("create")
@calls("POST /v1/shares")
def share_create(
    name: str,
    size: Annotated[int | None, typer.Option(min=1, help="GiB (default: the snapshot's).")]
    = None,
    share_type: Annotated[str | None, typer.Option("--type", help="Share type id or name.")]
    = None,
    snapshot: Annotated[str | None, typer.Option(help="Share snapshot id or name to copy.")]
    = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an NFS share."""
    if size is None and snapshot is None:
        raise typer.BadParameter("give --size (or --snapshot)", param_hint="--size")
    api = Api()
    body: dict[str, Any] = {"share_proto": "NFS", "name": name}
    if size is not None:
        body["size"] = size
    if share_type:
        body["share_type"] = share_type
    if snapshot:
        body["snapshot_id"] = snapshot_id(api, snapshot)
    resp = api.call("POST", "/v1/shares", json=body)
    share, op = resp["share"], resp["operation"]
    if not wait:
        emit(resp, as_json, lambda: kv_table(share))
        return
    follow_create(api, op, f"/v1/shares/{share['id']}", "share", share, as_json)


@share_app.command("list")
@calls("GET /v1/shares")
def share_list(as_json: JsonOpt = False) -> None:
    """List shares."""
    shares = Api().items("/v1/shares", "shares")
    emit(shares, as_json, lambda: list_table(shares, SHARE_COLUMNS))


@share_app.command("show")
@calls("GET /v1/shares/{share_id}")
def share_show(share: ShareArg, as_json: JsonOpt = False) -> None:
    """Show one share."""
    api = Api()
    data = api.get(f"/v1/shares/{share_id(api, share)}")
    emit(data, as_json, lambda: kv_table(data))


@share_app.command("delete")
@calls("DELETE /v1/shares/{share_id}")
def share_delete(share: ShareArg, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Delete a share (refused while it has snapshots or an operation runs)."""
    api = Api()
    sid = share_id(api, share)
    op = api.call("DELETE", f"/v1/shares/{sid}")["operation"]
    follow(api, op, f"delete share {sid}", wait, as_json)


@share_app.command("force-delete")
@calls("POST /v1/shares/{share_id}/action")
def share_force_delete(share: ShareArg, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Admin: delete from any status, ending a running operation first."""
    api = Api()
    sid, resp = action(api, share, {"force_delete": None})
    follow(api, resp["operation"], f"force-delete share {sid}", wait, as_json)


def resize(verb: str, share: str, new_size: int, wait: bool, as_json: bool) -> None:
    api = Api()
    sid, resp = action(api, share, {verb: {"new_size": new_size}})
    follow(api, resp["operation"], f"{verb} share {sid} to {new_size} GiB", wait, as_json)


SizeArg = Annotated[int, typer.Argument(metavar="NEW_SIZE", min=1, help="GiB.")]


@share_app.command("extend")
@calls("POST /v1/shares/{share_id}/action")
def share_extend(share: ShareArg, new_size: SizeArg, wait: WaitOpt = False,
                 as_json: JsonOpt = False) -> None:
    """Grow a share to NEW_SIZE GiB."""
    resize("extend", share, new_size, wait, as_json)


@share_app.command("shrink")
@calls("POST /v1/shares/{share_id}/action")
def share_shrink(share: ShareArg, new_size: SizeArg, wait: WaitOpt = False,
                 as_json: JsonOpt = False) -> None:
    """Shrink a share to NEW_SIZE GiB (refused below what it holds)."""
    resize("shrink", share, new_size, wait, as_json)


@share_app.command("reset-status")
@calls("POST /v1/shares/{share_id}/action")
def share_reset_status(
    share: ShareArg,
    status: Annotated[str, typer.Argument(metavar="STATUS", help="e.g. available, error.")],
    as_json: JsonOpt = False,
) -> None:
    """Admin: set a share's status (audited)."""
    api = Api()
    _, resp = action(api, share, {"reset_status": {"status": status}})
    emit(resp, as_json, lambda: kv_table(resp))


# ---- access rules ---------------------------------------------------------------------


class AccessType(StrEnum):
    ip = "ip"
    user = "user"
    cert = "cert"


class Level(StrEnum):
    rw = "rw"
    ro = "ro"


def wait_rule(api: Api, sid: str, rule_id: str) -> dict[str, Any] | None:
    """Poll the share's rules until this one has settled: its last state, None if gone
    (denied)."""
    started = time.monotonic()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err(), transient=False) as progress:
        task = progress.add_task(f"rule {rule_id}", total=None)
        while True:
            rules = api.items(f"/v1/shares/{sid}/access-rules", "access_list")
            rule = next((r for r in rules if r["id"] == rule_id), None)
            state = rule["state"] if rule else "deleted"
            progress.update(task, description=escape(f"rule {rule_id}: {state}"))
            if rule is None or state not in RULE_PENDING:
                return rule
            if time.monotonic() - started > RULE_WAIT_S:
                raise ApiError(f"rule {rule_id} is still {state} after {RULE_WAIT_S:.0f} s")
            time.sleep(common.POLL_S)


def show_rule(api: Api, sid: str, rule: dict[str, Any], wait: bool, as_json: bool) -> None:
    if not wait:
        emit(rule, as_json, lambda: kv_table(rule))
        return
    final = wait_rule(api, sid, rule["id"])
    shown = final or {**rule, "state": "deleted"}
    emit(shown, as_json, lambda: kv_table(shown))
    if final is not None and final["state"] == "error":
        raise typer.Exit(1)


@share_app.command("access-allow")
@calls("POST /v1/shares/{share_id}/action")
def share_access_allow(
    share: ShareArg,
    access_type: Annotated[AccessType, typer.Argument(metavar="ip|user|cert")],
    access_to: Annotated[str, typer.Argument(metavar="TO", help="Address/CIDR, user or CN.")],
    level: Annotated[Level, typer.Option(help="Read-write or read-only.")] = Level.rw,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the rule is active or "
                                       "in error.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Allow access to a share."""
    api = Api()
    sid, resp = action(api, share, {"allow_access": {
        "access_type": access_type.value, "access_to": access_to, "access_level": level.value}})
    show_rule(api, sid, resp["access"], wait, as_json)


@share_app.command("access-deny")
@calls("POST /v1/shares/{share_id}/action")
def share_access_deny(
    share: ShareArg,
    rule_id: Annotated[str, typer.Argument(metavar="RULE_ID")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the rule is gone or in "
                                       "error.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove an access rule."""
    api = Api()
    sid, resp = action(api, share, {"deny_access": {"access_id": rule_id}})
    show_rule(api, sid, resp["access"], wait, as_json)


@share_app.command("access-list")
@calls("GET /v1/shares/{share_id}/access-rules")
def share_access_list(share: ShareArg, as_json: JsonOpt = False) -> None:
    """A share's access rules and their states."""
    api = Api()
    rules = api.items(f"/v1/shares/{share_id(api, share)}/access-rules", "access_list")
    emit(rules, as_json, lambda: list_table(rules, RULE_COLUMNS))
