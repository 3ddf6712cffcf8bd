"""Security groups and their rules, with Neutron v2.0's field names."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Request, utc
from api.schemas.networks import NetId, NetName
from vmflow.network_models import SecurityGroup, SecurityGroupRule


class SecurityGroupCreate(Request):
    name: Annotated[NetName, StringConstraints(min_length=1)]
    description: NetName = ""


class SecurityGroupRuleCreate(Request):
    security_group_id: NetId
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: Annotated[str, StringConstraints(max_length=16)] | int | None = Field(
        default=None, description="tcp, udp, icmp, a number 0-255, or null: any")
    port_range_min: int | None = Field(default=None, description="icmp: the type")
    port_range_max: int | None = Field(default=None, description="icmp: the code")
    remote_ip_prefix: Annotated[str, StringConstraints(max_length=64)] | None = None
    remote_group_id: NetId | None = None
    description: NetName = ""


class SecurityGroupRulePublic(BaseModel):
    id: str
    security_group_id: str
    project_id: str
    tenant_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    description: str
    created_at: datetime

    @classmethod
    def of(cls, r: SecurityGroupRule) -> SecurityGroupRulePublic:
        return cls(id=r.id, security_group_id=r.security_group_id, project_id=r.project_id,
                   tenant_id=r.project_id, direction=r.direction, ethertype=r.ethertype,
                   protocol=r.protocol, port_range_min=r.port_range_min,
                   port_range_max=r.port_range_max, remote_ip_prefix=r.remote_ip_prefix,
                   remote_group_id=r.remote_group_id, description=r.description,
                   created_at=utc(r.created_at))


class SecurityGroupRuleList(BaseModel):
    security_group_rules: list[SecurityGroupRulePublic]


class SecurityGroupPublic(BaseModel):
    id: str
    name: str
    description: str
    project_id: str
    tenant_id: str
    security_group_rules: list[SecurityGroupRulePublic]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, g: SecurityGroup, rules: list[SecurityGroupRule]) -> SecurityGroupPublic:
        return cls(id=g.id, name=g.name, description=g.description, project_id=g.project_id,
                   tenant_id=g.project_id,
                   security_group_rules=[SecurityGroupRulePublic.of(r) for r in rules],
                   created_at=utc(g.created_at), updated_at=utc(g.updated_at))


class SecurityGroupList(BaseModel):
    security_groups: list[SecurityGroupPublic]
