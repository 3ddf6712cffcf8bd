"""Contracts of guest networks on the hosts (issue 12): what the control side tells a
hypervisor host about a network and a port, and what a host lists for the reconciler.
Standard library only, as every contract.

A network on a host is a bridge joined to the network's other hosts by VXLAN (its
`vni`, over the hosts' underlay), the subnet's gateway address on that bridge, and a
DHCP server that hands each port on the network its allocated address by MAC
(activities/hypervisor/network/). Security-group rules travel as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NetworkSpec:
    network_id: str  # uuid
    vni: int  # VXLAN network identifier, 1..16777215, unique per network
    cidr: str  # the network's IPv4 subnet, e.g. 10.0.0.0/24
    gateway_ip: str | None  # on every host's bridge (the same address and MAC on each)
    dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)
    mtu: int = 1450  # VXLAN costs 50 bytes of a 1500-byte underlay
    peers: list[str] = field(default_factory=list)  # the other hosts' underlay addresses


@dataclass(frozen=True)
class NetworkRef:
    network_id: str
    vni: int


@dataclass(frozen=True)
class SecurityGroupRule:
    """One Neutron security-group rule; absent fields match anything."""

    direction: str  # ingress | egress
    ethertype: str = "IPv4"
    protocol: str | None = None  # tcp | udp | icmp | None (any)
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None


@dataclass(frozen=True)
class PortSpec:
    port_id: str  # uuid
    network_id: str
    mac: str
    ip: str
    security_group_rules: list[SecurityGroupRule] = field(default_factory=list)
    # False: no filter at all (Neutron's port_security_enabled); True with no rules:
    # only DHCP passes, and no spoofing (libvirt nwfilter, per port)
    port_security: bool = True


@dataclass(frozen=True)
class PortRef:
    port_id: str
    network_id: str
    mac: str


@dataclass(frozen=True)
class AttachPort:
    """A NIC on the port's network for a guest: live if it runs, and in its definition."""

    instance_id: str
    port: PortSpec


@dataclass(frozen=True)
class DetachPort:
    instance_id: str
    port: PortRef


@dataclass(frozen=True)
class HostNetwork:
    """A network as one host has it: in the kernel (bridge, vxlan), as a process (DHCP)
    and on disk (its state dir with one file per port); any part may be missing."""

    network_id: str | None  # None: a bridge vmflow made whose state dir is gone
    vni: int
    bridge: bool
    vxlan: bool
    dhcp_running: bool
    port_ids: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)  # "mac ip" the DHCP server handed out
    age_s: float | None = None  # since its state dir's spec was written; None: no state dir


@dataclass(frozen=True)
class HostNetworks:
    host: str
    networks: list[HostNetwork]
    port_filters: list[str] = field(default_factory=list)  # port ids with an nwfilter


# ---- floating IPs (activities/hypervisor/network/floating.py) ------------------------------

FLOATING_IP_CHANGED_SIGNAL = "floating_ip_changed"


@dataclass(frozen=True)
class FloatingIpSpec:
    """1:1 NAT on the host that runs the guest: `floating_ip` (an address of the
    external link) to the port's `fixed_ip` on the network's bridge (its `vni`)."""

    floating_ip: str
    fixed_ip: str
    vni: int


@dataclass(frozen=True)
class FloatingIpRef:
    floating_ip: str


@dataclass(frozen=True)
class HostFloatingIps:
    """What one host NATs (from its nft table) and which floating addresses it answers
    for on its external link; the two disagree only after a crash between the steps."""

    host: str
    nat: list[FloatingIpSpec]
    addresses: list[str]


@dataclass(frozen=True)
class FloatingIpSync:
    """Input of SyncFloatingIp (workflow id floatingip-<id>): the database row is the
    record; the address is carried for a release, after which the row is gone."""

    floatingip_id: str
    floating_ip_address: str


@dataclass(frozen=True)
class FloatingIpPlan:
    """Where the floating IP should be NATed now (host None: nowhere), and the other
    hosts that are up, from which it is removed."""

    floatingip_id: str
    floating_ip_address: str
    host: str | None
    spec: FloatingIpSpec | None
    others: list[str]
    schedule_to_start_s: float
    exists: bool = True  # False: released (the row is gone)
    port_id: str | None = None  # the association the plan was made for
    fixed_ip_address: str | None = None


@dataclass(frozen=True)
class FloatingIpStatus:
    """The outcome of a round: ACTIVE | DOWN, written only if the row still targets
    what the round applied (a newer change has its own round)."""

    floatingip_id: str
    status: str
    fixed_ip_address: str | None
    port_id: str | None = None


@dataclass(frozen=True)
class MoveFloatingIps:
    """The floating IPs of an instance's ports, after the guest runs on `dest`."""

    instance_id: str
    source: str
    dest: str


@dataclass(frozen=True)
class InstanceFloatingIps:
    specs: list[FloatingIpSpec]
