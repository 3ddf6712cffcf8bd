"""Servers (Nova's instances): create, list, show, delete, action history. The
logic is in api/services/servers.py; actions in server_actions.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.servers import (
    ActionList,
    ServerAccepted,
    ServerCreate,
    ServerList,
    ServerPublic,
)
from api.services import servers
from api.services.guards import check_allowed
from api.services.operations import (
    find_idempotent,
    idempotency_guard,
    once,
    replayed_row,
    start_instance_operation,
)
from api.services.preempt import cancel_and_wait
from api.services.servers import action_history, get_instance
from vmflow.models import Instance, Operation

router = APIRouter(prefix="/v1/servers", tags=["servers"])


@router.post("", status_code=202, response_model=ServerAccepted)
async def create_server(body: ServerCreate, session: SessionDep, auth: WriterDep,
                        client: TemporalDep,
                        idempotency_key: IdempotencyKey = None) -> ServerAccepted:
    def replay(earlier: Operation) -> ServerAccepted:
        inst = replayed_row(session, Instance, earlier.resource_id, "server")
        return ServerAccepted(server=servers.view(session, inst),
                              operation=OperationBrief.of(earlier))

    async def make() -> ServerAccepted:
        inst, op = await servers.create(client, session, auth, body, idempotency_key)
        return ServerAccepted(server=servers.view(session, inst), operation=OperationBrief.of(op))

    async with idempotency_guard(auth, idempotency_key):
        # also when another API process takes the key meanwhile: its server, not a 409
        return await once(session, auth, idempotency_key, "instance", "create", replay, make)


@router.get("", response_model=ServerList)
def list_servers(session: SessionDep, auth: AuthDep) -> ServerList:
    return ServerList(servers=servers.views(session, servers.listed(session, auth)))


@router.get("/{server_id}", response_model=ServerPublic)
def show_server(server_id: str, session: SessionDep, auth: AuthDep) -> ServerPublic:
    return servers.view(session, get_instance(session, auth, server_id))


@router.delete("/{server_id}", status_code=202, response_model=OperationAccepted)
async def delete_server(server_id: str, session: SessionDep, auth: WriterDep,
                        client: TemporalDep,
                        idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    """Cancel a running operation, wait for its compensation, then delete."""
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "instance", "delete",
                                  server_id)
        if earlier is not None:  # the instance may be gone by now: replay anyway
            return OperationAccepted(operation=OperationBrief.of(earlier))
        inst = get_instance(session, auth, server_id)
        check_allowed("delete", inst, auth)  # lock (non-admins) and state: 409
        await cancel_and_wait(client, session, inst)
        op = await start_instance_operation(client, session, inst, "delete", auth,
                                            idempotency_key)
        return OperationAccepted(operation=OperationBrief.of(op))


@router.get("/{server_id}/actions", response_model=ActionList)
def list_actions(server_id: str, session: SessionDep, auth: AuthDep) -> ActionList:
    return ActionList(actions=action_history(session, get_instance(session, auth, server_id)))
