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
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.servers import ServerPublic
from api.services import servers
from api.services.operations import find_idempotent, idempotency_guard
from api.services.server_action_run import run_action
from api.services.server_actions import parse_action
from api.services.servers import get_instance
from api.services.snapshots import ACTIONS as SNAPSHOTS
from api.services.snapshots import SnapshotAccepted, replay_snapshot

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
        outcome = await run_action(client, session, auth, inst, parsed, idempotency_key,
                                   response)
        if outcome.snapshot is not None:
            return outcome.snapshot
        if outcome.operation is not None:
            return OperationAccepted(operation=OperationBrief.of(outcome.operation))
        response.status_code = 200  # lock, unlock, os-resetState: the server as it is now
        return servers.view(session, inst)
