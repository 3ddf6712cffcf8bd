"""Ports (Neutron v2.0 names): create, list (filters device_id, network_id), show,
delete. The logic is in api/services/ports.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.errors import NotFound
from api.schemas.ports import PortCreate, PortList, PortPublic
from api.services import ports
from api.services.security_groups import sync_members_changed

router = APIRouter(prefix="/v1/ports", tags=["ports"])


@router.post("", status_code=201, response_model=PortPublic)
async def create_port(body: PortCreate, session: SessionDep, auth: WriterDep,
                      client: MaybeTemporalDep, idempotency_key: IdempotencyKey = None
                      ) -> PortPublic:
    """409 IpAddressGenerationFailure when the pool is exhausted, 409
    IpAddressAlreadyAllocated for a requested address in use. Rules naming its groups
    as remote groups learn its address (SyncSecurityGroup)."""
    port = ports.create_port(session, auth, body, idempotency_key)
    await sync_members_changed(session, client, port.security_groups, port.project_id)
    return port


@router.get("", response_model=PortList)
def list_ports(session: SessionDep, auth: AuthDep,
               device_id: Annotated[str | None, Query(max_length=255)] = None,
               network_id: Annotated[str | None, Query(max_length=64)] = None) -> PortList:
    return PortList(ports=ports.list_ports(session, auth, device_id, network_id))


@router.get("/{port_id}", response_model=PortPublic)
def show_port(port_id: str, session: SessionDep, auth: AuthDep) -> PortPublic:
    return ports.view(session, ports.get_port(session, auth, port_id))


@router.delete("/{port_id}", status_code=204)
async def delete_port(port_id: str, session: SessionDep, auth: WriterDep,
                      client: MaybeTemporalDep, idempotency_key: IdempotencyKey = None
                      ) -> Response:
    """Frees its addresses and disassociates its floating IPs; rules naming its groups
    as remote groups forget its address (SyncSecurityGroup)."""
    try:
        port = ports.get_port(session, auth, port_id)
        groups, project = ports.groups(session, [port.id])[port.id], port.project_id
    except NotFound:  # a replay of a delete, or a 404 from the delete itself
        groups, project = [], auth.project_id
    ports.delete_port(session, auth, port_id, idempotency_key)
    await sync_members_changed(session, client, groups, project)
    return Response(status_code=204)
