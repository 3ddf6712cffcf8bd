"""Contracts of security-group changes reaching the hosts (issue 12, item 3) and of the
reconciler's network pass (item 8). Standard library only, as every contract.

A change to a group (a rule made or deleted, a member port come or gone) is applied
by SyncSecurityGroup (workflows/network/security_group_sync.py, id secgroup-<group>):
every port the change touches gets its whole filter again on its host, computed from
the database at that moment, so the last state always wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmflow.contracts.networks import (
    FloatingIpRef,
    FloatingIpSpec,
    HostFloatingIps,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)

GROUP_CHANGED_SIGNAL = "group_changed"


@dataclass(frozen=True)
class SecurityGroupSync:
    """The input of SyncSecurityGroup."""

    security_group_id: str


@dataclass(frozen=True)
class PortOnHost:
    host: str
    port: PortSpec


@dataclass(frozen=True)
class SecurityGroupPlan:
    """The ports a group's change touches, each with its rules as they are now."""

    targets: list[PortOnHost]
    unbound: list[str] = field(default_factory=list)  # port ids on no host: nothing to do


@dataclass(frozen=True)
class SecurityGroupSyncResult:
    applied: list[str]  # "<port id>@<host>"
    failed: list[str]  # "<port id>@<host>: why"
    unbound: list[str]  # port ids on no host
    rounds: int


# ---- the reconciler's network pass -------------------------------------------------------

@dataclass(frozen=True)
class NetworkRemoval:
    ref: NetworkRef
    why: str


@dataclass(frozen=True)
class PortRemoval:
    ref: PortRef
    why: str


@dataclass(frozen=True)
class NetworkRepair:
    spec: NetworkSpec
    why: str


@dataclass(frozen=True)
class PortRepair:
    port: PortSpec
    why: str


@dataclass(frozen=True)
class FloatingIpRemoval:
    ref: FloatingIpRef
    why: str


@dataclass(frozen=True)
class FloatingIpRepair:
    spec: FloatingIpSpec
    why: str


@dataclass(frozen=True)
class NetworkPlan:
    """What one host's network pass does, in this order: floating IPs and ports
    removed, networks removed, networks ensured, ports ensured, floating IPs ensured."""

    host: str
    remove_ports: list[PortRemoval] = field(default_factory=list)
    remove_networks: list[NetworkRemoval] = field(default_factory=list)
    ensure_networks: list[NetworkRepair] = field(default_factory=list)
    ensure_ports: list[PortRepair] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    remove_floating_ips: list[FloatingIpRemoval] = field(default_factory=list)
    ensure_floating_ips: list[FloatingIpRepair] = field(default_factory=list)


@dataclass(frozen=True)
class NetworkPlanRequest:
    listing: HostNetworks  # listed on the host before the database is read
    grace_s: float | None = None  # None: VMFLOW_RECONCILE_GRACE
    floating: HostFloatingIps | None = None  # likewise; None: not listed, not judged
