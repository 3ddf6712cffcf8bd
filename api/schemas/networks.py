"""Networks and subnets, with Neutron v2.0's field names (bodies flat, as all of v1).

`router:external` and the `provider:*` fields keep Neutron's colons (aliases here)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from api.schemas.common import Request, printable, utc
from vmflow.network_models import Network, Subnet

# a resource name or description: printable, at most 255 characters (Neutron's limit)
NetName = Annotated[str, StringConstraints(max_length=255), AfterValidator(printable)]
NetId = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(printable)]
IpText = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class NetworkCreate(Request):
    name: NetName = ""
    admin_state_up: bool = True
    shared: bool = Field(default=False, description="admin only")
    router_external: bool = Field(default=False, alias="router:external",
                                  description="admin only: floating IPs come from it")


class NetworkPublic(BaseModel):
    id: str
    name: str
    project_id: str
    tenant_id: str
    admin_state_up: bool
    shared: bool
    router_external: bool = Field(alias="router:external")
    status: str
    subnets: list[str]
    mtu: int
    # Neutron shows the segment to admins only
    provider_network_type: str | None = Field(default=None, alias="provider:network_type")
    provider_segmentation_id: int | None = Field(default=None,
                                                 alias="provider:segmentation_id")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, n: Network, subnets: list[str], admin: bool) -> NetworkPublic:
        return cls.model_validate({
            "id": n.id, "name": n.name, "project_id": n.project_id,
            "tenant_id": n.project_id, "admin_state_up": n.admin_state_up, "shared": n.shared,
            "router:external": n.router_external, "status": n.status, "subnets": subnets,
            "mtu": n.mtu, "provider:network_type": "vxlan" if admin else None,
            "provider:segmentation_id": n.segmentation_id if admin else None,
            "created_at": utc(n.created_at), "updated_at": utc(n.updated_at)})


class NetworkList(BaseModel):
    networks: list[NetworkPublic]


class AllocationPool(Request):
    start: IpText
    end: IpText


class SubnetCreate(Request):
    network_id: NetId
    cidr: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: NetName = ""
    ip_version: Literal[4] = 4
    gateway_ip: IpText | None = Field(default=None, description=(
        "absent: the first host address; null: no gateway"))
    allocation_pools: list[AllocationPool] | None = Field(
        default=None, description="absent: every host address but the gateway")
    enable_dhcp: bool = True
    dns_nameservers: list[IpText] = Field(default_factory=list)


class SubnetPublic(BaseModel):
    id: str
    name: str
    network_id: str
    project_id: str
    tenant_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, str]]
    enable_dhcp: bool
    dns_nameservers: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subnet) -> SubnetPublic:
        return cls(id=s.id, name=s.name, network_id=s.network_id, project_id=s.project_id,
                   tenant_id=s.project_id, ip_version=s.ip_version, cidr=s.cidr,
                   gateway_ip=s.gateway_ip, allocation_pools=list(s.allocation_pools),
                   enable_dhcp=s.enable_dhcp, dns_nameservers=list(s.dns_nameservers),
                   created_at=utc(s.created_at), updated_at=utc(s.updated_at))


class SubnetList(BaseModel):
    subnets: list[SubnetPublic]
