"""Contracts of a server's ports (issue 12): the control side's answer to "what does
this instance need on a host to have its NICs" (networks to ensure, ports to reserve
and filter, and the NICs its domain gets), and port binding updates. Standard
library only, as every contract."""

from __future__ import annotations

from dataclasses import dataclass, field

from vmflow.contracts.instances import Nic
from vmflow.contracts.networks import NetworkSpec, PortSpec


@dataclass(frozen=True)
class InstanceNetworking:
    instance_id: str
    networks: list[NetworkSpec] = field(default_factory=list)
    ports: list[PortSpec] = field(default_factory=list)  # eth0 first
    nics: list[Nic] = field(default_factory=list)  # one per port, same order


@dataclass(frozen=True)
class GroupRefs:
    """Security groups whose membership changed (a server's ports came or went)."""

    group_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostPort:
    host: str
    port: PortSpec


@dataclass(frozen=True)
class HostPorts:
    """Plugged ports whose filters name those groups as remote: their rules changed."""

    ports: list[HostPort] = field(default_factory=list)


@dataclass(frozen=True)
class PortBinding:
    """The instance's ports plugged on `host` (ACTIVE, binding_host_id) or, with host
    "", unplugged (DOWN)."""

    instance_id: str
    host: str = ""


@dataclass(frozen=True)
class AttachInterfaceRequest:
    """POST /v1/servers/{id}/os-interface as the workflow's input: a new port on
    network_id (fixed_ip if asked, the given security groups), or the given port_id."""

    instance_id: str
    operation_id: str
    network_id: str = ""
    port_id: str = ""  # given: bound, unbound again on detach
    fixed_ip: str | None = None
    security_group_ids: list[str] = field(default_factory=list)
    new_port_id: str = ""  # the id the made port gets (the API answers with it at once)


@dataclass(frozen=True)
class InterfacePort:
    """One port of an instance (attach: made or bound by this operation)."""

    instance_id: str
    port_id: str
    nic_row_id: str = ""  # the InstanceNic row the attach wrote (its operation id)


@dataclass(frozen=True)
class DetachInterfaceRequest:
    instance_id: str
    operation_id: str
    port_id: str
