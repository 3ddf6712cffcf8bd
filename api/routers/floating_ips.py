"""Floating IPs (Neutron v2.0 names): allocate from an external network, associate
and disassociate by PUT {port_id}, list, show, release. The logic is in
api/services/floating_ips.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.schemas.floating_ips import (
    FloatingIpCreate,
    FloatingIpList,
    FloatingIpPublic,
    FloatingIpUpdate,
)
from api.services import floating_ips

router = APIRouter(prefix="/v1/floating-ips", tags=["floating IPs"])


@router.post("", status_code=201, response_model=FloatingIpPublic)
async def create_fip(body: FloatingIpCreate, session: SessionDep, auth: WriterDep,
                     client: MaybeTemporalDep,
                     idempotency_key: IdempotencyKey = None) -> FloatingIpPublic:
    """409 IpAddressGenerationFailure when the external network's pool is exhausted;
    with a port_id, the host of the port's guest NATs it (status ACTIVE once it has)."""
    return FloatingIpPublic.of(await floating_ips.create_and_sync(
        session, auth, client, body, idempotency_key))


@router.get("", response_model=FloatingIpList)
def list_fips(session: SessionDep, auth: AuthDep,
              port_id: Annotated[str | None, Query(max_length=64)] = None,
              floating_network_id: Annotated[str | None, Query(max_length=64)] = None,
              ) -> FloatingIpList:
    return FloatingIpList(floatingips=[FloatingIpPublic.of(f) for f in floating_ips.list_fips(
        session, auth, port_id, floating_network_id)])


@router.get("/{fip_id}", response_model=FloatingIpPublic)
def show_fip(fip_id: str, session: SessionDep, auth: AuthDep) -> FloatingIpPublic:
    return FloatingIpPublic.of(floating_ips.get_fip(session, auth, fip_id))


@router.put("/{fip_id}", response_model=FloatingIpPublic)
async def update_fip(fip_id: str, body: FloatingIpUpdate, session: SessionDep,
                     auth: WriterDep, client: MaybeTemporalDep,
                     idempotency_key: IdempotencyKey = None) -> FloatingIpPublic:
    """{port_id}: associate (409 if that fixed IP has one); {port_id: null}: disassociate.
    The hosts follow (workflow floatingip-<id>): ACTIVE once NATed, else DOWN."""
    return FloatingIpPublic.of(await floating_ips.update_and_sync(
        session, auth, client, fip_id, body, idempotency_key))


@router.delete("/{fip_id}", status_code=204)
async def delete_fip(fip_id: str, session: SessionDep, auth: WriterDep,
                     client: MaybeTemporalDep,
                     idempotency_key: IdempotencyKey = None) -> Response:
    """Release; a host that NATs it lets go (workflow floatingip-<id>)."""
    await floating_ips.release_and_sync(session, auth, client, fip_id, idempotency_key)
    return Response(status_code=204)
