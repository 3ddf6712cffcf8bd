"""Ports, with Neutron v2.0's field names (`binding:host_id` keeps its colon)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Request, utc
from api.schemas.networks import IpText, NetId, NetName
from vmflow.network_models import IpAllocation, Port

DeviceText = Annotated[str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9_.:-]*$")]
MAX_FIXED_IPS = 8


class FixedIp(Request):
    subnet_id: NetId | None = None
    ip_address: IpText | None = None


class PortCreate(Request):
    network_id: NetId
    name: NetName = ""
    admin_state_up: bool = True
    fixed_ips: list[FixedIp] | None = Field(default=None, max_length=MAX_FIXED_IPS,
                                            description="absent: one address from the pool")
    security_groups: list[NetId] | None = Field(
        default=None, max_length=16, description="absent: the project's default group")
    device_id: DeviceText = ""
    device_owner: DeviceText = ""
    binding_host_id: DeviceText = Field(default="", alias="binding:host_id",
                                        description="admin only")


class PortPublic(BaseModel):
    id: str
    name: str
    network_id: str
    project_id: str
    tenant_id: str
    mac_address: str
    admin_state_up: bool
    status: str
    fixed_ips: list[dict[str, str]]
    security_groups: list[str]
    device_id: str
    device_owner: str
    binding_host_id: str = Field(alias="binding:host_id")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Port, ips: list[IpAllocation], groups: list[str]) -> PortPublic:
        return cls.model_validate({
            "id": p.id, "name": p.name, "network_id": p.network_id,
            "project_id": p.project_id, "tenant_id": p.project_id,
            "mac_address": p.mac_address, "admin_state_up": p.admin_state_up,
            "status": p.status,
            "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                          for a in ips],
            "security_groups": groups, "device_id": p.device_id,
            "device_owner": p.device_owner, "binding:host_id": p.binding_host_id,
            "created_at": utc(p.created_at), "updated_at": utc(p.updated_at)})


class PortList(BaseModel):
    ports: list[PortPublic]
