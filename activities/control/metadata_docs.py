"""An instance's metadata documents, as Nova writes them: the config drive's
openstack/latest/{meta_data.json,network_data.json,user_data} and what the metadata
service on its host answers (activities/hypervisor/network/metadata.py). Built here,
where the database is; hosts get them as data.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.control.base import DbActivities
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.instances import ConfigDrive
from vmflow.contracts.metadata import (
    InstanceMetadata,
    InstanceMetadataRequest,
    InstanceMetadataSet,
)
from vmflow.models import Flavor, Instance, Keypair
from vmflow.network_models import FloatingIp, IpAllocation, Network, Port, Subnet

LINK_TYPE = "bridge"  # the guest's NIC is on a Linux bridge (Nova: vif type)
HOSTNAME_MAX = 63  # one DNS label


def hostname(name: str, instance_id: str) -> str:
    """The guest's hostname from its display name, as Nova's sanitize_hostname makes it
    but ASCII only: lowercase, spaces, '_' and '.' become '-', anything else outside
    [a-z0-9-] goes, runs of '-' become one, at most one DNS label; nothing left:
    Server-<id>. A guest's init hands the hostname to hostnamectl, /etc/hosts and DHCP,
    so only a valid label may reach it, never the raw name."""
    label = re.sub(r"[^a-z0-9-]+", "", re.sub(r"[ _.]", "-", name).lower())
    return re.sub(r"-{2,}", "-", label)[:HOSTNAME_MAX].strip("-") or f"Server-{instance_id}"


def meta_data(s: Session, inst: Instance) -> dict[str, Any]:
    """openstack/latest/meta_data.json, as Nova writes it."""
    keys = {}
    if inst.key_name:
        kp = s.exec(select(Keypair).where(Keypair.user_id == inst.user_id,
                                          Keypair.name == inst.key_name)).first()
        if kp is not None:
            keys[kp.name] = kp.public_key
    return {
        "uuid": inst.id, "name": inst.name, "hostname": hostname(inst.name, inst.id),
        "launch_index": 0, "availability_zone": "nova", "project_id": inst.project_id,
        "meta": inst.meta or {}, "public_keys": keys,
        "keys": [{"name": k, "type": "ssh", "data": v} for k, v in keys.items()],
    }


def instance_ports(s: Session, instance_id: str) -> list[tuple[Port, Network, Subnet, str]]:
    """(port, network, subnet, fixed IP) of every IPv4 address of the instance's ports,
    in the order the ports were made (the order of its NICs)."""
    rows = s.exec(select(Port, Network, Subnet, IpAllocation)
                  .where(Port.device_id == instance_id)
                  .join(Network, col(Network.id) == Port.network_id)
                  .join(IpAllocation, col(IpAllocation.port_id) == Port.id)
                  .join(Subnet, col(Subnet.id) == IpAllocation.subnet_id)
                  .order_by(col(Port.created_at), col(Port.id))).all()
    return [(p, n, sn, a.ip_address) for p, n, sn, a in rows]


def network_data(s: Session, instance_id: str) -> dict[str, Any]:
    """openstack/latest/network_data.json (Nova's format): one link per port, one
    network per address (ipv4_dhcp when the subnet has DHCP, else ipv4 with address,
    netmask and default route), the DNS servers as services."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    dns: list[str] = []
    for port, net, subnet, ip in instance_ports(s, instance_id):
        link_id = f"tap{port.id[:11]}"  # Nova's name for the port's link
        if link_id not in {link["id"] for link in links}:
            links.append({"id": link_id, "vif_id": port.id, "type": LINK_TYPE,
                          "mtu": net.mtu, "ethernet_mac_address": port.mac_address})
        entry: dict[str, Any] = {"id": f"network{len(networks)}", "link": link_id,
                                 "network_id": net.id}
        if subnet.enable_dhcp:
            entry["type"] = "ipv4_dhcp"
        else:
            cidr = ipaddress.IPv4Network(subnet.cidr)
            entry.update(type="ipv4", ip_address=ip, netmask=str(cidr.netmask),
                         routes=[{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                  "gateway": subnet.gateway_ip}] if subnet.gateway_ip else [],
                         services=[{"type": "dns", "address": a}
                                   for a in subnet.dns_nameservers or []])
        networks.append(entry)
        dns += [a for a in subnet.dns_nameservers or [] if a not in dns]
    return {"links": links, "networks": networks,
            "services": [{"type": "dns", "address": a} for a in dns]}


def config_drive(s: Session, inst: Instance) -> ConfigDrive:
    """The config drive's documents for `inst`, with its ports as they are now."""
    return ConfigDrive(inst.id, json.dumps(meta_data(s, inst)), inst.user_data,
                       json.dumps(network_data(s, inst.id)))


def instance_metadata(s: Session, inst: Instance) -> list[InstanceMetadata]:
    """What the metadata service serves on each of the instance's addresses."""
    meta, net_data = json.dumps(meta_data(s, inst)), json.dumps(network_data(s, inst.id))
    flavor = s.get(Flavor, inst.flavor_id)
    out = []
    for port, net, _subnet, ip in instance_ports(s, inst.id):
        fip = s.exec(select(FloatingIp).where(FloatingIp.port_id == port.id,
                                              FloatingIp.fixed_ip_address == ip)).first()
        out.append(InstanceMetadata(
            instance_id=inst.id, network_id=net.id, vni=net.segmentation_id, fixed_ip=ip,
            port_id=port.id, meta_data_json=meta, network_data_json=net_data,
            user_data_b64=inst.user_data, hostname=hostname(inst.name, inst.id),
            instance_type=flavor.name if flavor else "", ami_id=inst.image_id,
            public_ipv4=fip.floating_ip_address if fip else None))
    return out


class MetadataDocsActivities(DbActivities):
    @activity.defn(name=ControlActs.INSTANCE_METADATA)
    def instance_metadata(self, req: InstanceMetadataRequest) -> InstanceMetadataSet:
        """One InstanceMetadata per address of the instance's ports (also while it is
        being deleted: withdrawing needs them); none once its row is gone."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None:
                return InstanceMetadataSet([])
            return InstanceMetadataSet(instance_metadata(s, inst))

    def all(self) -> list[Callable[..., Any]]:
        return [self.instance_metadata]
