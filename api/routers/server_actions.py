"""`POST /v1/servers/{id}/action`: every instance action on the one state table.

Workflow actions answer 202 with the operation; lock, unlock and os-resetState are
database changes and answer 200 with the server. Checks, in order: the body (400),
Idempotency-Key replay, the server is visible (404), admin-only actions (403), the
lock (409), the vm_state/task_state (409). Readers never get past the auth (403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from sqlmodel import Session
from temporalio.client import Client

from api.auth import AuthContext
from api.deps import IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.errors import Conflict, ServiceUnavailable
from api.routers.servers import get_instance, resolve_image
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.servers import ServerPublic
from api.services.guards import check_lock, check_state, require_admin, user_name
from api.services.operations import (
    InputFactory,
    find_idempotent,
    idempotency_guard,
    start_instance_operation,
)
from api.services.preempt import running_operation, terminate_running
from api.services.server_actions import ParsedAction, parse_action
from api.services.snapshots import ACTIONS as SNAPSHOTS
from api.services.snapshots import SnapshotAccepted, accept_snapshot, replay_snapshot
from vmflow.contracts.instances import OperationRef, RebootRequest, RebuildRequest, RescueRequest
from vmflow.models import Instance, Operation, now

router = APIRouter(prefix="/v1/servers", tags=["server actions"])


@router.post("/{server_id}/action", status_code=202,
             response_model=SnapshotAccepted | OperationAccepted | ServerPublic)
async def server_action(server_id: str, response: Response, session: SessionDep,
                        auth: WriterDep, client: MaybeTemporalDep,
                        body: Annotated[Any, Body()],
                        idempotency_key: IdempotencyKey = None
                        ) -> SnapshotAccepted | OperationAccepted | ServerPublic:
    parsed = parse_action(body)
    async with idempotency_guard(auth, idempotency_key):
        # a repeat answers what the first request did, whatever happened since (even
        # if the server is gone now: the key is the caller's, so nothing leaks)
        earlier = find_idempotent(session, auth, idempotency_key, "instance", parsed.action,
                                  server_id)
        if earlier is not None and earlier.workflow_id:
            if parsed.action in SNAPSHOTS:  # with the image the first request made
                again = await replay_snapshot(client, session, earlier, response)
                if again is not None:
                    return again
            return OperationAccepted(operation=OperationBrief.of(earlier))
        inst = get_instance(session, auth, server_id)
        if earlier is not None:  # lock, unlock, reset-state: the server as it is now
            response.status_code = 200
            return ServerPublic.of(inst)
        require_admin(parsed.action, auth)
        check_lock(parsed.action, inst, auth)
        check_state(parsed.action, inst)

        if parsed.action in ("lock", "unlock", "reset-state"):
            response.status_code = 200
            note = None
            if parsed.action == "lock":
                lock(inst, auth, parsed.args.locked_reason)
            elif parsed.action == "unlock":
                unlock(inst, auth)
            else:
                note = await reset_state(client, session, inst, auth, parsed.args.state)
            record(session, inst, auth, parsed.action, idempotency_key, note)
            return ServerPublic.of(inst)

        if client is None:
            raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
        if parsed.action in SNAPSHOTS:  # the image record first, then the workflow
            return await accept_snapshot(client, session, auth, inst, parsed.args,
                                         idempotency_key, response)
        make_input = workflow_input(session, auth, inst, parsed)  # before anything changes
        if parsed.action == "force-delete":
            await terminate_running(client, session, inst,
                                    f"force-delete by {user_name(session, auth)}")
        op = await start_instance_operation(client, session, inst, parsed.action, auth,
                                            idempotency_key, make_input)
        return OperationAccepted(operation=OperationBrief.of(op))


def workflow_input(session: Session, auth: AuthContext, inst: Instance,
                   parsed: ParsedAction) -> InputFactory:
    """The workflow's input for an operation id (contracts.py)."""
    if parsed.action in ("reboot-soft", "reboot-hard"):
        hard = parsed.action == "reboot-hard"
        return lambda op_id: RebootRequest(inst.id, op_id, hard)
    if parsed.action == "rescue":
        ref = parsed.args.rescue_image_ref
        image_id = resolve_image(session, auth, ref).id if ref else None  # 400 if bad
        after = parsed.args.unrescue_after
        return lambda op_id: RescueRequest(inst.id, op_id, image_id, after)
    if parsed.action == "rebuild":
        new_image = resolve_image(session, auth, parsed.args.image_ref).id  # 400 if bad
        return lambda op_id: RebuildRequest(inst.id, op_id, new_image)
    return lambda op_id: OperationRef(inst.id, op_id)


def lock(inst: Instance, auth: AuthContext, reason: str | None) -> None:
    if inst.locked and inst.locked_by == "admin" and not auth.is_admin:
        # re-locking would turn an administrator's lock into one the owner may lift
        raise Conflict(f"server {inst.id} is locked by an administrator",
                       type="InstanceLocked")
    inst.locked, inst.locked_reason = True, reason
    inst.locked_by = "admin" if auth.is_admin else "owner"


def unlock(inst: Instance, auth: AuthContext) -> None:
    if inst.locked and inst.locked_by == "admin" and not auth.is_admin:
        raise Conflict(f"server {inst.id} is locked by an administrator; only an "
                       "administrator can unlock it", type="InstanceLocked")
    inst.locked, inst.locked_by, inst.locked_reason = False, None, None


async def reset_state(client: Client | None, session: Session, inst: Instance,
                      auth: AuthContext, state: str) -> str:
    """Set vm_state, clear task_state; the audit text for the action history."""
    running = await running_operation(client, session, inst)
    if running is not None:
        raise Conflict(f"operation {running} is running on server {inst.id}; wait for it to "
                       "finish, or forceDelete the server")
    audit = (f"reset by {user_name(session, auth)} from "
             f"{inst.vm_state}/{inst.task_state or '-'} to {state}")
    inst.vm_state, inst.task_state = state, None
    return audit


def record(session: Session, inst: Instance, auth: AuthContext, action: str,
           idempotency_key: str | None, note: str | None) -> None:
    """Commit the change with a finished Operation row: the action history shows it
    and a repeated Idempotency-Key finds it."""
    inst.updated_at = now()
    session.add(inst)
    session.add(Operation(
        resource_type="instance", resource_id=inst.id, action=action, status="succeeded",
        workflow_id="", project_id=inst.project_id, user_id=auth.user_id,
        idempotency_key=idempotency_key, last_error=note,
        finished_at=now()))
    session.commit()
