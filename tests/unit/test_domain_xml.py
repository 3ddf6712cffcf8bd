"""The domain-XML builder against golden files (regenerate: VMFLOW_REGOLD=1)."""

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from activities.hypervisor.libvirt.domain_xml import (
    Disk,
    DomainConfig,
    Interface,
    build,
    interface_xml,
)

GOLDEN = Path(__file__).parent / "golden"
UUID = "0b7e5a6c-8f3e-4d0a-9a54-5c1f6a3b2d11"

CASES = {
    "direct_kernel_tcg": DomainConfig(
        uuid=UUID, name=f"vmflow-{UUID}", vcpus=1, ram_mb=256, virt_type="qemu",
        disks=[Disk("/var/lib/vmflow/hosts/h/instances/x/disk", "vda", serial="root")],
        console_log="/var/lib/vmflow/hosts/h/instances/x/console.log",
        kernel="/cache/k", initrd="/cache/r", cmdline="console=ttyS0 quiet",
        extra_cmdline=["vmflow.root=/dev/vda"],
    ),
    "disk_boot_kvm_no_agent": DomainConfig(
        uuid=UUID, name=f"vmflow-{UUID}", vcpus=4, ram_mb=8192, virt_type="kvm",
        disks=[Disk("/d/disk", "vda"), Disk("/d/config.iso", "sda", fmt="raw", device="cdrom",
                                           readonly=True)],
        console_log="/d/console.log", agent=False,
    ),
    "two_nics_one_filtered": DomainConfig(
        uuid=UUID, name=f"vmflow-{UUID}", vcpus=1, ram_mb=256, virt_type="qemu",
        disks=[Disk("/d/disk", "vda")], console_log="/d/console.log",
        interfaces=[Interface("fa:16:3e:00:00:01", "vmfbr100", mtu=1450),
                    Interface("fa:16:3e:00:00:02", "vmfbr200",
                              filter="vmflow-port-p2", filter_params={"IP": "10.0.1.5"})],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden(case: str) -> None:
    xml = build(CASES[case])
    path = GOLDEN / f"{case}.xml"
    if os.environ.get("VMFLOW_REGOLD"):
        path.write_text(xml)
    assert xml == path.read_text()


def test_hostile_text_is_escaped_not_interpreted() -> None:
    evil = "quiet</cmdline><devices><disk type='file'><source file='/etc/shadow'/>"
    cfg = DomainConfig(uuid=UUID, name="n", vcpus=1, ram_mb=64, virt_type="qemu", disks=[],
                       console_log="/c", kernel="/k", cmdline=evil)
    root = ET.fromstring(build(cfg))
    assert root.findtext("os/cmdline") == evil
    assert root.findall("devices/disk") == []


def test_uuid_is_the_instance_id() -> None:
    root = ET.fromstring(build(CASES["direct_kernel_tcg"]))
    assert root.findtext("uuid") == UUID
    assert root.get("type") == "qemu"
    assert root.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"


def test_a_nic_is_virtio_on_its_bridge_with_its_mac() -> None:
    root = ET.fromstring(build(CASES["two_nics_one_filtered"]))
    nics = root.findall("devices/interface")
    assert [n.get("type") for n in nics] == ["bridge", "bridge"]
    assert [n.find("mac").get("address") for n in nics] == ["fa:16:3e:00:00:01",
                                                           "fa:16:3e:00:00:02"]
    assert [n.find("source").get("bridge") for n in nics] == ["vmfbr100", "vmfbr200"]
    assert {n.find("model").get("type") for n in nics} == {"virtio"}
    assert nics[0].find("mtu").get("size") == "1450" and nics[1].find("mtu") is None
    assert root.find("devices/interface/driver") is None  # no vhost: it does not exist here
    assert root.find(".//bandwidth") is None


def test_hotplug_xml_is_the_same_device() -> None:
    nic = CASES["two_nics_one_filtered"].interfaces[1]
    el = ET.fromstring(interface_xml(nic))
    assert el.tag == "interface" and el.find("mac").get("address") == nic.mac
    assert el.find("filterref").get("filter") == "vmflow-port-p2"
    assert el.find("filterref/parameter").attrib == {"name": "IP", "value": "10.0.1.5"}


def test_hostile_bridge_name_stays_an_attribute() -> None:
    el = ET.fromstring(interface_xml(Interface("fa:16:3e:00:00:01", "br'/><source bridge='x")))
    assert el.find("source").get("bridge") == "br'/><source bridge='x"
    assert len(el.findall("source")) == 1
