"""Floating IPs, with Neutron v2.0's field names (the list key is `floatingips`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.common import Request, utc
from api.schemas.networks import IpText, NetId, NetName
from vmflow.network_models import FloatingIp


class FloatingIpCreate(Request):
    floating_network_id: NetId
    floating_ip_address: IpText | None = Field(default=None,
                                               description="absent: the next free one")
    port_id: NetId | None = None
    fixed_ip_address: IpText | None = None
    description: NetName = ""


class FloatingIpUpdate(Request):
    port_id: NetId | None = Field(description="a port: associate; null: disassociate")
    fixed_ip_address: IpText | None = None


class FloatingIpPublic(BaseModel):
    id: str
    floating_ip_address: str
    floating_network_id: str
    port_id: str | None
    fixed_ip_address: str | None
    router_id: str | None = None  # vmflow has no routers: the host NATs 1:1
    status: str
    project_id: str
    tenant_id: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, f: FloatingIp) -> FloatingIpPublic:
        return cls(id=f.id, floating_ip_address=f.floating_ip_address,
                   floating_network_id=f.floating_network_id, port_id=f.port_id,
                   fixed_ip_address=f.fixed_ip_address, status=f.status,
                   project_id=f.project_id, tenant_id=f.project_id,
                   description=f.description, created_at=utc(f.created_at),
                   updated_at=utc(f.updated_at))


class FloatingIpList(BaseModel):
    floatingips: list[FloatingIpPublic]
