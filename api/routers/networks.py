"""Networks (Neutron v2.0 names): create, list, show, delete.

Another project's network is 404 unless it is shared or external (then visible, not
changeable); a reader gets 403 on changes; only an admin makes a shared or external
one. The logic is in api/services/networks.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.networks import NetworkCreate, NetworkList, NetworkPublic
from api.services import networks

router = APIRouter(prefix="/v1/networks", tags=["networks"])
# exclude_none: the provider:* fields are shown to admins only


@router.post("", status_code=201, response_model=NetworkPublic, response_model_exclude_none=True)
def create_network(body: NetworkCreate, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> NetworkPublic:
    return networks.create_network(session, auth, body, idempotency_key)


@router.get("", response_model=NetworkList, response_model_exclude_none=True)
def list_networks(session: SessionDep, auth: AuthDep,
                  name: Annotated[str | None, Query(max_length=255)] = None,
                  router_external: Annotated[bool | None, Query(alias="router:external")]
                  = None) -> NetworkList:
    return NetworkList(networks=networks.list_networks(session, auth, name, router_external))


@router.get("/{network_id}", response_model=NetworkPublic, response_model_exclude_none=True)
def show_network(network_id: str, session: SessionDep, auth: AuthDep) -> NetworkPublic:
    return networks.network_view(session, auth,
                                 networks.get_network(session, auth, network_id))


@router.delete("/{network_id}", status_code=204)
def delete_network(network_id: str, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> Response:
    """409 NetworkInUse while it has ports; its subnet goes with it."""
    networks.delete_network(session, auth, network_id, idempotency_key)
    return Response(status_code=204)
