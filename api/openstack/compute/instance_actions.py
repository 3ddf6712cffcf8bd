"""GET /servers/{id}/os-instance-actions[/{request_id}]: the server's operations
(api/services/servers.py action_history) as Nova's instance actions, newest first,
each named by the X-OpenStack-Request-Id of the request that started it.

Nova records events per compute step; vmflow's unit is the operation (one workflow),
so each action shows one event: the workflow (or the API for a database action), its
times and result. Shapes per microversion: updated_at and paging from 2.58, events for
everyone from 2.51 (admins only before), hostId/host on events from 2.62."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from api.deps import SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import OsAuthDep
from api.openstack.compute.server_views import host_id, nova_time
from api.openstack.compute.servers import server_or_404
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.common import utc
from api.schemas.servers import ActionPublic
from api.services.servers import action_history
from vmflow import states
from vmflow.models import Instance

router = APIRouter(prefix="/v2.1/servers", tags=["compute instance actions"])

# vmflow's action -> Nova's (nova/compute/instance_actions.py)
NOVA_NAMES = {
    "reboot-soft": "reboot", "reboot-hard": "reboot", "snapshot": "createImage",
    "backup": "createBackup", "shelve-offload": "shelveOffload",
    "unshelve-to-host": "unshelve", "confirm-resize": "confirmResize",
    "revert-resize": "revertResize", "live-migrate": "live-migration",
    "reset-state": "resetState", "force-delete": "delete",
    "attach-interface": "attach_interface", "detach-interface": "detach_interface",
}
RESULTS = {"succeeded": "Success", "failed": "Error", "compensated": "Error"}


def _action(inst: Instance, a: ActionPublic, v: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": NOVA_NAMES.get(a.action, a.action), "request_id": a.request_id,
        "user_id": a.user_id, "project_id": inst.project_id, "instance_uuid": inst.id,
        "start_time": nova_time(a.start),
        "message": "Error" if a.result in ("failed", "compensated") else None,
    }
    if v >= Version(2, 58):
        out["updated_at"] = nova_time(a.finish or a.start)
    return out


def _event(inst: Instance, a: ActionPublic, v: Version, admin: bool) -> dict[str, Any]:
    t = states.TRANSITIONS.get(a.action)
    event: dict[str, Any] = {
        "event": f"workflow_{t.workflow}" if t is not None and t.workflow
        else f"api_{NOVA_NAMES.get(a.action, a.action)}",
        "start_time": nova_time(a.start), "finish_time": nova_time(a.finish),
        "result": RESULTS.get(a.result),
    }
    if admin:
        event["traceback"] = a.fault if a.result in ("failed", "compensated") else None
    if v >= Version(2, 62):
        event["hostId"] = host_id(inst)
        if admin:
            event["host"] = inst.host or ""
    return event


def _since(request: Request, key: str) -> datetime | None:
    value = request.query_params.get(key)
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {key}: {value!r}") from None


@router.get("/{server_id}/os-instance-actions")
def list_instance_actions(server_id: str, request: Request, session: SessionDep,
                          auth: OsAuthDep, v: MicroversionDep) -> dict[str, Any]:
    inst = server_or_404(session, auth, server_id)
    actions = list(reversed(action_history(session, inst)))
    if v < Version(2, 58):
        return {"instanceActions": [_action(inst, a, v) for a in actions]}
    since, before = _since(request, "changes-since"), _since(request, "changes-before")
    if before is not None and v < Version(2, 66):
        raise BadRequest("changes-before needs microversion 2.66")
    actions = [a for a in actions
               if (since is None or utc(a.finish or a.start) >= since)
               and (before is None or utc(a.finish or a.start) <= before)]
    marker = request.query_params.get("marker")
    if marker is not None:
        at = next((n for n, a in enumerate(actions) if a.request_id == marker), None)
        if at is None:
            raise BadRequest(f"Marker {marker} could not be found.")
        actions = actions[at + 1:]
    limit_text = request.query_params.get("limit")
    out: dict[str, Any] = {}
    if limit_text is not None:
        if not limit_text.isdigit():
            raise BadRequest("Invalid input for query parameters limit")
        limit = int(limit_text)
        if len(actions) > limit:
            base = str(request.url.remove_query_params(["marker", "limit"]))
            sep = "&" if "?" in base else "?"
            last = actions[limit - 1].request_id if limit else ""
            out["links"] = [{"rel": "next",
                             "href": f"{base}{sep}limit={limit}&marker={last}"}]
        actions = actions[:limit]
    return {"instanceActions": [_action(inst, a, v) for a in actions], **out}


@router.get("/{server_id}/os-instance-actions/{request_id}")
def show_instance_action(server_id: str, request_id: str, session: SessionDep,
                         auth: OsAuthDep, v: MicroversionDep) -> dict[str, Any]:
    inst = server_or_404(session, auth, server_id)
    found = [a for a in action_history(session, inst) if a.request_id == request_id]
    if not found:
        raise NotFound(f"Action for request_id {request_id} on instance {server_id} "
                       "not found")
    a = found[-1]
    action = _action(inst, a, v)
    if v >= Version(2, 51) or auth.is_admin:
        action["events"] = [_event(inst, a, v, auth.is_admin)]
    return {"instanceAction": action}
