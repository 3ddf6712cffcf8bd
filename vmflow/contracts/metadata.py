"""Contracts of the metadata service (issue 12, item 5): what the control side hands a
hypervisor host so that 169.254.169.254 answers a guest with its own documents. The
hypervisor worker has no database; these are the documents, built on the control side
(activities/control/metadata_docs.py) and published on the host that runs the guest
(activities/hypervisor/network/metadata.py). Standard library only, as every contract.

The host's server knows a guest only by the network its request came in on and the
source address of the packet (nwfilter keeps a port from sending from another address),
so one InstanceMetadata is one port: (network_id, fixed_ip).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceMetadata:
    instance_id: str  # uuid; also the EC2 instance-id (vmflow has no integer ids)
    network_id: str
    vni: int  # the network's bridge on the host, vmfbr<vni>
    fixed_ip: str  # the port's IPv4 address: the only key the server looks up
    port_id: str  # the host drops the port's documents when the port leaves it
    meta_data_json: str  # openstack/latest/meta_data.json, as on the config drive
    network_data_json: str  # openstack/latest/network_data.json
    user_data_b64: str | None = None  # None: user_data and user-data answer 404
    hostname: str = ""
    instance_type: str = ""  # the flavor's name
    ami_id: str = ""  # the image's id
    public_ipv4: str | None = None  # the floating IP on this port, if any


@dataclass(frozen=True)
class MetadataRef:
    """One port's documents on a host; withdrawn only while they are this instance's
    (the address may already belong to another port's guest)."""

    instance_id: str
    network_id: str
    fixed_ip: str


@dataclass(frozen=True)
class InstanceMetadataRequest:
    """The documents of every port of an instance (control side)."""

    instance_id: str


@dataclass(frozen=True)
class InstanceMetadataSet:
    ports: list[InstanceMetadata]
