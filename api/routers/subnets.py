"""Subnets (Neutron v2.0 names): one IPv4 subnet per network; create, list, show,
delete. The logic is in api/services/networks.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.networks import SubnetCreate, SubnetList, SubnetPublic
from api.services import networks

router = APIRouter(prefix="/v1/subnets", tags=["subnets"])


@router.post("", status_code=201, response_model=SubnetPublic)
def create_subnet(body: SubnetCreate, session: SessionDep, auth: WriterDep,
                  idempotency_key: IdempotencyKey = None) -> SubnetPublic:
    """gateway_ip absent: the first host; allocation_pools absent: the other hosts."""
    return networks.subnet_view(networks.create_subnet(session, auth, body, idempotency_key))


@router.get("", response_model=SubnetList)
def list_subnets(session: SessionDep, auth: AuthDep,
                 network_id: Annotated[str | None, Query(max_length=64)] = None) -> SubnetList:
    return SubnetList(subnets=[networks.subnet_view(s) for s in
                               networks.list_subnets(session, auth, network_id)])


@router.get("/{subnet_id}", response_model=SubnetPublic)
def show_subnet(subnet_id: str, session: SessionDep, auth: AuthDep) -> SubnetPublic:
    return networks.subnet_view(networks.get_subnet(session, auth, subnet_id))


@router.delete("/{subnet_id}", status_code=204)
def delete_subnet(subnet_id: str, session: SessionDep, auth: WriterDep,
                  idempotency_key: IdempotencyKey = None) -> Response:
    """409 SubnetInUse while a port holds one of its addresses."""
    networks.delete_subnet(session, auth, subnet_id, idempotency_key)
    return Response(status_code=204)
