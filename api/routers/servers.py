"""Servers (Nova's instances): create, list, show, delete, action history. The
logic is in api/services/servers.py; actions in server_actions.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

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
from api.services.operations import (
    find_idempotent,
    idempotency_guard,
    once,
    replayed_row,
)
from api.services.servers import MAX_LIMIT, action_history, get_instance
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
def list_servers(
    request: Request, session: SessionDep, auth: AuthDep,
    limit: Annotated[int | None, Query(ge=0, description=f"page size, at most {MAX_LIMIT}")
                     ] = None,
    marker: Annotated[str | None, Query(description="the last id of the previous page")
                      ] = None,
    name: Annotated[str | None, Query(description="a regular expression searched in "
                                                  "the name (Nova's)")] = None,
    status: Annotated[str | None, Query(description="Nova's status; repeat the key for "
                                                    "any of several")] = None,
    host: Annotated[str | None, Query(description="admins only (ignored for others, "
                                                  "as Nova)")] = None,
    image: str | None = None, flavor: str | None = None,
    changes_since: Annotated[str | None, Query(
        alias="changes-since", description="ISO 8601; deleted servers too, as Nova")] = None,
    changes_before: Annotated[str | None, Query(alias="changes-before")] = None,
) -> ServerList:
    """The servers of the caller's project (an admin's: every project's), oldest
    first, a page of at most `limit` (MAX_LIMIT) after `marker`; filtered in SQL by
    the query builder the compute facade shares (api/services/servers.py)."""
    q = servers.ServerQuery(
        project_id=None if auth.is_admin else auth.project_id, limit=servers.limit_of(limit),
        marker=marker, name=None if name is None else servers.name_of(name),
        # every value of a repeated key (the parameter above documents it, holds the last)
        statuses=servers.statuses_of(request.query_params.getlist("status"), auth),
        host=host, image_id=image, flavor_id=flavor,
        changes_since=servers.time_of("changes-since", changes_since),
        changes_before=servers.time_of("changes-before", changes_before))
    rows, more = servers.list_page(session, auth, q)
    nxt = None
    if more and rows:
        nxt = str(request.url.include_query_params(limit=q.limit, marker=rows[-1].id))
    return ServerList(servers=servers.views(session, rows), next=nxt)


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
        op = await servers.delete_server(client, session, auth, inst, idempotency_key)
        return OperationAccepted(operation=OperationBrief.of(op))


@router.get("/{server_id}/actions", response_model=ActionList)
def list_actions(server_id: str, session: SessionDep, auth: AuthDep) -> ActionList:
    return ActionList(actions=action_history(session, get_instance(session, auth, server_id)))
