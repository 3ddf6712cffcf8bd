"""Hypervisor hosts (admin): capacity, what is allocated on them, state and liveness;
an admin enables, disables (with a reason) and forces down a host. The logic is in
api/services/hosts.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, IdempotencyKey, MaybeTemporalDep, SessionDep
from api.schemas.hosts import HostList, HostPublic, HostUpdate
from api.services import hosts
from api.services.hosts import host_views

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])


@router.get("", response_model=HostList)
async def list_hosts(session: SessionDep, auth: AdminDep, client: MaybeTemporalDep) -> HostList:
    return HostList(hosts=await host_views(session, client, hosts.listed(session)))


@router.get("/{name}", response_model=HostPublic)
async def show_host(name: str, session: SessionDep, auth: AdminDep,
                    client: MaybeTemporalDep) -> HostPublic:
    return (await host_views(session, client, [hosts.get_host(session, name)]))[0]


@router.put("/{name}", response_model=HostPublic)
async def update_host(name: str, body: HostUpdate, session: SessionDep, auth: AdminDep,
                      client: MaybeTemporalDep,
                      idempotency_key: IdempotencyKey = None) -> HostPublic:
    """Nova's os-services update; setting the same values again changes nothing, and a
    repeated Idempotency-Key changes nothing either (the host as it is now)."""
    host = hosts.update_host(session, auth, name, body, idempotency_key)
    return (await host_views(session, client, [host]))[0]
