"""Ports (Neutron v2.0 names): create, list (filters device_id, network_id), show,
delete. The logic is in api/services/ports.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.ports import PortCreate, PortList, PortPublic
from api.services import ports

router = APIRouter(prefix="/v1/ports", tags=["ports"])


@router.post("", status_code=201, response_model=PortPublic)
def create_port(body: PortCreate, session: SessionDep, auth: WriterDep,
                idempotency_key: IdempotencyKey = None) -> PortPublic:
    """409 IpAddressGenerationFailure when the pool is exhausted, 409
    IpAddressAlreadyAllocated for a requested address in use."""
    return ports.create_port(session, auth, body, idempotency_key)


@router.get("", response_model=PortList)
def list_ports(session: SessionDep, auth: AuthDep,
               device_id: Annotated[str | None, Query(max_length=255)] = None,
               network_id: Annotated[str | None, Query(max_length=64)] = None) -> PortList:
    return PortList(ports=ports.list_ports(session, auth, device_id, network_id))


@router.get("/{port_id}", response_model=PortPublic)
def show_port(port_id: str, session: SessionDep, auth: AuthDep) -> PortPublic:
    return ports.view(session, ports.get_port(session, auth, port_id))


@router.delete("/{port_id}", status_code=204)
def delete_port(port_id: str, session: SessionDep, auth: WriterDep,
                idempotency_key: IdempotencyKey = None) -> Response:
    """Frees its addresses and disassociates its floating IPs."""
    ports.delete_port(session, auth, port_id, idempotency_key)
    return Response(status_code=204)
