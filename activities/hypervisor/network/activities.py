"""Host activities for guest networks (issue 12): a network on this host (bridge,
VXLAN to its other hosts, DHCP), a port's DHCP reservation, a guest's NIC on the
network, and the listing the reconciler compares with the database.

Each ensures a state and may run any number of times (DESIGN decision 7). Bad input
is a non-retryable InvalidState: a retry would send the same spec again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import libvirt
from temporalio import activity

from activities.errors import permanent
from activities.hypervisor.libvirt import domain_xml, filter_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.network import dhcp, kernel, metadata
from activities.hypervisor.network.floating import FloatingIpActivities
from activities.hypervisor.power import save_spec, spec_path
from activities.hypervisor.underlay import underlay_address
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import DefineDomain, Nic
from vmflow.contracts.networks import (
    AttachPort,
    DetachPort,
    HostNetwork,
    HostNetworks,
    NetworkRef,
    NetworkSpec,
    PortRef,
    PortSpec,
)
from vmflow.contracts.reconcile import HostRef
from vmflow.settings import Settings


@contextmanager
def _invalid_input() -> Iterator[None]:
    try:
        yield
    except ValueError as e:
        raise permanent(f"invalid network input: {e}", Errors.INVALID_STATE) from e


class NetworkActivities:
    def __init__(self, settings: Settings, conn: Connection):
        self.settings = settings
        self.conn = conn

    def _require_namespace(self) -> None:
        if not self.settings.host_netns:
            raise permanent("guest networks live only in a host's own network namespace; "
                            f"host {self.settings.host} has none", Errors.INVALID_STATE)

    def _spec(self, network_id: str) -> NetworkSpec:
        """The spec this host last ensured the network with."""
        with _invalid_input():
            path = dhcp.state_dir(self.settings, network_id) / "network.json"
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise permanent(f"network {network_id} is not on host {self.settings.host}",
                            Errors.NOT_FOUND) from e
        return NetworkSpec(**raw)

    # ---- networks -------------------------------------------------------------------
    @activity.defn(name=HostActs.ENSURE_NETWORK)
    def ensure_network(self, spec: NetworkSpec) -> None:
        self._require_namespace()
        with _invalid_input():
            dhcp.check_network(spec)
            d = dhcp.state_dir(self.settings, spec.network_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / "network.json").write_text(json.dumps(asdict(spec)))
        kernel.ensure(self.settings, spec, underlay_address(self.settings))
        FloatingIpActivities(self.settings).ensure_egress()  # guests reach the outside
        if spec.dhcp:
            dhcp.ensure(self.settings, spec)
        else:
            dhcp.stop(d)

    @activity.defn(name=HostActs.REMOVE_NETWORK)
    def remove_network(self, ref: NetworkRef) -> None:
        """DHCP server, vxlan, bridge and state dir (leases included) gone; absent is fine."""
        self._require_namespace()
        with _invalid_input():
            d = dhcp.state_dir(self.settings, ref.network_id)
        dhcp.stop(d)
        metadata.remove_route(self.settings, ref.vni)  # and the server, with the last one
        kernel.remove(self.settings, ref.vni)
        shutil.rmtree(d, ignore_errors=True)

    # ---- ports ------------------------------------------------------------------------
    @activity.defn(name=HostActs.ENSURE_PORT)
    def ensure_port(self, port: PortSpec) -> None:
        """The port's address reserved for its MAC in this host's DHCP server."""
        self._spec(port.network_id)  # the network must be on this host first
        with _invalid_input():
            dhcp.check_port(port)
            d = dhcp.state_dir(self.settings, port.network_id)
            dhcp.add_port(d, port)
            if port.port_security:
                self._define_filter(port)
        if not port.port_security:
            self._undefine_filter(port.port_id)

    def _define_filter(self, port: PortSpec) -> None:
        """The port's security groups as its nwfilter: redefined in place (same UUID),
        which libvirt applies to the running NIC before it returns. Also what a
        migration's destination needs before the guest comes (libvirt refuses it
        otherwise)."""
        c = self.conn.get()
        name = filter_xml.filter_name(port.port_id)
        try:
            have: str | None = c.nwfilterLookupByName(name).UUIDString()
        except libvirt.libvirtError:
            have = None
        # the same rules again: libvirt sees no change and returns at once (2 ms)
        c.nwfilterDefineXML(filter_xml.build(port.port_id, port.security_group_rules, have))

    def _undefine_filter(self, port_id: str) -> None:
        try:
            f = self.conn.get().nwfilterLookupByName(filter_xml.filter_name(port_id))
        except libvirt.libvirtError:
            return  # none: done
        f.undefine()  # in use by a NIC still attached: an error, retried after the detach

    @activity.defn(name=HostActs.REMOVE_PORT)
    def remove_port(self, ref: PortRef) -> None:
        with _invalid_input():
            d = dhcp.state_dir(self.settings, ref.network_id)
            uuid.UUID(ref.port_id)
        if d.is_dir():
            dhcp.remove_port(self.settings, d, ref.port_id, ref.mac)
            metadata.forget_port(self.settings, ref.network_id, ref.port_id)
        self._undefine_filter(ref.port_id)

    # ---- a guest's NIC ------------------------------------------------------------------
    @activity.defn(name=HostActs.ATTACH_PORT)
    def attach_port(self, req: AttachPort) -> None:
        """A virtio NIC with the port's MAC on the network's bridge: live if the guest
        runs, and in its definition; present already (same MAC) is done."""
        spec = self._spec(req.port.network_id)
        with _invalid_input():
            dhcp.check_port(req.port)
        self.ensure_port(req.port)
        dom = Domain.require(self.conn.get(), req.instance_id)
        nic = Nic(req.port.port_id, req.port.mac, spec.vni, spec.mtu, req.port.ip,
                  req.port.port_security)
        # the saved define request first: a later redefinition (rescue, rebuild,
        # resize) keeps the NIC; a NIC there but not attached yet is attached below
        self._saved_nics(req.instance_id, lambda nics: [
            *[n for n in nics if n.mac != nic.mac], nic])
        if req.port.mac in _macs(dom.xml()):
            return
        dom.virdom.attachDeviceFlags(domain_xml.interface_xml(domain_xml.interface_of(nic)),
                                     _affect(dom))

    @activity.defn(name=HostActs.DETACH_PORT)
    def detach_port(self, req: DetachPort) -> None:
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is None:
            return
        for xml in _interfaces(dom.xml()):
            if req.port.mac in _macs(xml):
                dom.virdom.detachDeviceFlags(xml, _affect(dom))
        self._saved_nics(req.instance_id,
                         lambda nics: [n for n in nics if n.mac != req.port.mac.lower()])

    def _saved_nics(self, instance_id: str, change: Callable[[list[Nic]], list[Nic]]) -> None:
        """The instance's saved define request (domain.json) with its NICs changed; an
        instance without one (defined by hand) has nothing to keep."""
        with _invalid_input():
            d = self.settings.host_dir() / "instances" / str(uuid.UUID(instance_id))
        try:
            old = DefineDomain(**json.loads(spec_path(d).read_text()))
        except FileNotFoundError:
            return
        new = dataclasses.replace(old, nics=change(list(old.nics)))
        if new != old:
            save_spec(d, new)

    # ---- the reconciler's view ------------------------------------------------------------
    @activity.defn(name=HostActs.LIST_NETWORKS)
    def list_networks(self, ref: HostRef) -> HostNetworks:
        """Every network vmflow made on this host, whole or in parts: links in the
        namespace, state dirs on disk, DHCP servers running."""
        if ref.host != self.settings.host:
            raise permanent(f"this worker is host {self.settings.host}, not {ref.host}",
                            Errors.INVALID_STATE)
        found: dict[int, HostNetwork] = {}
        root = self.settings.host_dir() / "networks"
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                spec = NetworkSpec(**json.loads((d / "network.json").read_text()))
                age = time.time() - (d / "network.json").stat().st_mtime
            except (OSError, ValueError, TypeError):
                continue
            found[spec.vni] = HostNetwork(
                network_id=spec.network_id, vni=spec.vni, bridge=False, vxlan=False,
                dhcp_running=dhcp.pid(d) is not None, port_ids=dhcp.port_ids(d),
                leases=[f"{m} {ip}" for m, ip in dhcp.leases(d)], age_s=age)
        if self.settings.host_netns:
            for vni, (alias, br, vx) in kernel.made_links(self.settings).items():
                old = found.get(vni) or HostNetwork(network_id=alias, vni=vni, bridge=False,
                                                    vxlan=False, dhcp_running=False)
                found[vni] = HostNetwork(old.network_id, vni, br, vx, old.dhcp_running,
                                         old.port_ids, old.leases, old.age_s)
        prefix = filter_xml.filter_name(str(uuid.UUID(int=0)))[:-36]
        filters = sorted(n[len(prefix):] for n in self.conn.get().listNWFilters()
                         if n.startswith(prefix))
        return HostNetworks(self.settings.host, [found[v] for v in sorted(found)], filters)

    def all(self) -> list[Callable[..., Any]]:
        return [self.ensure_network, self.remove_network, self.ensure_port, self.remove_port,
                self.attach_port, self.detach_port, self.list_networks]


def _affect(dom: Domain) -> int:
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags | libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.is_active() else flags


def _interfaces(xml: str) -> list[str]:
    return [ET.tostring(el, encoding="unicode")
            for el in ET.fromstring(xml).iterfind("./devices/interface")]


def _macs(xml: str) -> set[str]:
    root = ET.fromstring(xml)
    return {el.get("address", "").lower() for el in root.iter("mac")}
