"""SQLModel tables of guest networks (Neutron v2.0's resources, fields named as
Neutron's): networks, subnets, ports and their addresses, security groups and rules,
floating IPs. Registered with the other tables through vmflow.models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from vmflow.models import new_id, now

# --- networks (Neutron v2.0's resources; API fields named as Neutron's) ---------------

class Network(SQLModel, table=True):
    """A layer-2 network; the hosts that have a port on it join it over VXLAN with
    `segmentation_id` as the VNI. `router_external` is Neutron's `router:external`."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = ""
    project_id: str = Field(foreign_key="project.id", index=True)
    admin_state_up: bool = True
    shared: bool = False
    router_external: bool = False
    status: str = "ACTIVE"
    mtu: int = 1450  # 1500 minus the VXLAN header
    segmentation_id: int = Field(unique=True)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class AutoNetwork(SQLModel, table=True):
    """The network `networks: "auto"` gives a project (Nova's get-me-a-network), one per
    project: the primary key makes a second concurrent "first use" fail and re-read."""

    project_id: str = Field(foreign_key="project.id", primary_key=True)
    network_id: str = Field(foreign_key="network.id", unique=True)


class Subnet(SQLModel, table=True):
    """The one IPv4 subnet of a network; allocation_pools: [{"start", "end"}]."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = ""
    network_id: str = Field(foreign_key="network.id", unique=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    ip_version: int = 4
    cidr: str
    gateway_ip: str | None = None
    allocation_pools: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    enable_dhcp: bool = True
    dns_nameservers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class Port(SQLModel, table=True):
    """A virtual NIC on a network: its MAC, addresses (IpAllocation) and security
    groups (PortSecurityGroup). `binding_host_id` is Neutron's `binding:host_id`."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = ""
    network_id: str = Field(foreign_key="network.id", index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    mac_address: str = Field(unique=True)
    admin_state_up: bool = True
    status: str = "DOWN"  # ACTIVE once the host side has bound it
    device_id: str = Field(default="", index=True)
    device_owner: str = ""
    binding_host_id: str = ""
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class IpAllocation(SQLModel, table=True):
    """A fixed IP of a port. The primary key (network_id, ip_address) is what makes
    sharing an address on a network impossible, whatever races."""

    network_id: str = Field(foreign_key="network.id", primary_key=True)
    ip_address: str = Field(primary_key=True)
    subnet_id: str = Field(foreign_key="subnet.id", index=True)
    port_id: str = Field(foreign_key="port.id", index=True)


class SecurityGroup(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str
    description: str = ""
    project_id: str = Field(foreign_key="project.id", index=True)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class DefaultSecurityGroup(SQLModel, table=True):
    """The project's `default` group, made on first use; the primary key keeps it one."""

    project_id: str = Field(foreign_key="project.id", primary_key=True)
    security_group_id: str = Field(foreign_key="securitygroup.id", unique=True)


class SecurityGroupRule(SQLModel, table=True):
    """One allow rule. `signature` is the rule's normalized content: unique per group,
    so a duplicate is refused (409) even when two requests race."""

    __table_args__ = (UniqueConstraint("security_group_id", "signature"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    security_group_id: str = Field(foreign_key="securitygroup.id", index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None  # tcp | udp | icmp | a number 0-255 | None: any
    port_range_min: int | None = None  # icmp: the type
    port_range_max: int | None = None  # icmp: the code
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = Field(default=None, foreign_key="securitygroup.id",
                                        index=True)
    description: str = ""
    signature: str
    created_at: datetime = Field(default_factory=now)


class PortSecurityGroup(SQLModel, table=True):
    port_id: str = Field(foreign_key="port.id", primary_key=True)
    security_group_id: str = Field(foreign_key="securitygroup.id", primary_key=True,
                                   index=True)


class FloatingIp(SQLModel, table=True):
    """An address of an external network (held by a port of device_owner
    network:floatingip there), NATed 1:1 to a port's fixed IP when associated. The
    unique (port_id, fixed_ip_address) keeps one floating IP per fixed IP."""

    __table_args__ = (UniqueConstraint("port_id", "fixed_ip_address"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    floating_network_id: str = Field(foreign_key="network.id", index=True)
    floating_port_id: str = Field(foreign_key="port.id", unique=True)
    floating_ip_address: str
    port_id: str | None = Field(default=None, foreign_key="port.id", index=True)
    fixed_ip_address: str | None = None
    status: str = "DOWN"  # ACTIVE once the host side has applied the NAT
    description: str = ""
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class InstanceNic(SQLModel, table=True):
    """A NIC a server asked for at launch, in order (eth0 first): a port to make on
    network_id (the launch makes it and fills port_id), or a given port
    (preserve_on_delete, Nova's name: unbound, not deleted, when the server goes).
    The launch's control step reads these; the API only writes them. No foreign keys:
    a request outlives neither its server nor its launch, and a network deleted before
    the launch made its port fails that launch (NetworkNotFound), not the delete."""

    id: str = Field(default_factory=new_id, primary_key=True)
    instance_id: str = Field(index=True)
    position: int
    network_id: str
    port_id: str | None = Field(default=None, index=True)
    fixed_ip: str | None = None
    security_group_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    preserve_on_delete: bool = False
