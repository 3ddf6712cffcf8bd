"""`POST /v1/servers/{id}/action`: every instance action on the one state table.

Workflow actions answer 202 with the operation; lock, unlock and os-resetState are
database changes and answer 200 with the server. Checks, in order: the body (400),
Idempotency-Key replay, the server is visible (404), admin-only actions (403), the
lock (409), the vm_state/task_state (409). Readers never get past the auth (403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.deps import IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.errors import ServiceUnavailable
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.servers import ServerPublic
from api.services import servers
from api.services.evacuate import check_evacuate
from api.services.guards import check_lock, check_state, require_admin, user_name
from api.services.operations import (
    find_idempotent,
    idempotency_guard,
    start_instance_operation,
)
from api.services.preempt import terminate_running
from api.services.server_actions import (
    DATABASE_ACTIONS,
    database_action,
    parse_action,
    workflow_input,
)
from api.services.servers import get_instance
from api.services.snapshots import ACTIONS as SNAPSHOTS
from api.services.snapshots import SnapshotAccepted, accept_snapshot, replay_snapshot

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
            return servers.view(session, inst)
        require_admin(parsed.action, auth)
        check_lock(parsed.action, inst, auth)
        check_state(parsed.action, inst)

        if parsed.action in DATABASE_ACTIONS:
            response.status_code = 200
            await database_action(client, session, inst, auth, parsed, idempotency_key)
            return servers.view(session, inst)

        if client is None:
            raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
        if parsed.action in SNAPSHOTS:  # the image record first, then the workflow
            return await accept_snapshot(client, session, auth, inst, parsed.args,
                                         idempotency_key, response)
        if parsed.action == "evacuate":  # 400 while its host is up, or for a bad host
            await check_evacuate(client, session, inst, parsed.args.host)
        make_input = workflow_input(session, auth, inst, parsed)  # before anything changes
        if parsed.action == "force-delete":
            await terminate_running(client, session, inst,
                                    f"force-delete by {user_name(session, auth)}")
        op = await start_instance_operation(client, session, inst, parsed.action, auth,
                                            idempotency_key, make_input)
        return OperationAccepted(operation=OperationBrief.of(op))
