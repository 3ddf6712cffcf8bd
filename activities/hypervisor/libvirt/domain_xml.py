"""Pure libvirt domain-XML builder: a dataclass in, XML out, no I/O.

Built with ElementTree so names, paths and command lines are always escaped; the
driver never concatenates XML strings. Tested against golden files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from activities.hypervisor.libvirt import filter_xml
from vmflow.contracts.instances import Nic

AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True)
class Disk:
    path: str
    target: str  # vda, vdb, ...
    fmt: str = "qcow2"
    serial: str = ""
    readonly: bool = False
    device: str = "disk"  # disk | cdrom


@dataclass(frozen=True)
class Interface:
    """A NIC on a bridge vmflow manages (activities/hypervisor/network): virtio, userspace
    virtio-net on a tap (no vhost-net on these kernels; <driver name='vhost'/> would be
    ignored silently), the network's MTU told to the guest (host_mtu). No <bandwidth>:
    the kernels here lack the qdiscs libvirt needs for it."""

    mac: str
    bridge: str
    mtu: int | None = None
    filter: str | None = None  # an nwfilter referenced by the NIC
    filter_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DomainConfig:
    uuid: str
    name: str
    vcpus: int
    ram_mb: int
    virt_type: str  # kvm | qemu
    disks: list[Disk]
    console_log: str
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str = ""
    agent: bool = True
    machine: str = "pc"
    extra_cmdline: list[str] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _os(dom: ET.Element, cfg: DomainConfig) -> None:
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=cfg.machine)
    if cfg.kernel:
        # direct kernel boot, as Nova does for images with kernel_id/ramdisk_id
        _sub(os_el, "kernel", cfg.kernel)
        if cfg.initrd:
            _sub(os_el, "initrd", cfg.initrd)
        _sub(os_el, "cmdline", " ".join([cfg.cmdline, *cfg.extra_cmdline]).strip())
    else:
        _sub(os_el, "boot", dev="hd")


def _disk(devices: ET.Element, d: Disk) -> None:
    disk = _sub(devices, "disk", type="file", device=d.device)
    if d.device == "cdrom":
        _sub(disk, "driver", name="qemu", type=d.fmt)
        _sub(disk, "source", file=d.path)
        _sub(disk, "target", dev=d.target, bus="sata")
    else:
        _sub(disk, "driver", name="qemu", type=d.fmt, cache="none", discard="unmap")
        _sub(disk, "source", file=d.path)
        _sub(disk, "target", dev=d.target, bus="virtio")
    if d.serial:
        _sub(disk, "serial", d.serial)
    if d.readonly:
        _sub(disk, "readonly")


def _interface(parent: ET.Element | None, nic: Interface) -> ET.Element:
    el = ET.Element("interface", type="bridge") if parent is None else _sub(
        parent, "interface", type="bridge")
    _sub(el, "mac", address=nic.mac)
    _sub(el, "source", bridge=nic.bridge)
    _sub(el, "model", type="virtio")
    if nic.mtu is not None:
        _sub(el, "mtu", size=str(nic.mtu))
    if nic.filter:
        ref = _sub(el, "filterref", filter=nic.filter)
        for name, value in sorted(nic.filter_params.items()):
            _sub(ref, "parameter", name=name, value=value)
    return el


def bridge_name(vni: int) -> str:
    """The network's bridge, the same on every host (activities/hypervisor/network/kernel)."""
    return f"vmfbr{vni}"


def interface_of(nic: Nic) -> Interface:
    """A port's NIC (vmflow.contracts.instances.Nic) as the domain has it: on the
    network's bridge, its nwfilter told the port's address (clean-traffic's IP)."""
    return Interface(mac=nic.mac, bridge=bridge_name(nic.vni), mtu=nic.mtu,
                     filter=filter_xml.filter_name(nic.port_id) if nic.port_security else None,
                     filter_params={"IP": nic.ip} if nic.port_security else {})


def interface_xml(nic: Interface) -> str:
    """One NIC's device XML, as attachDeviceFlags takes it (hotplug)."""
    el = _interface(None, nic)
    ET.indent(el)
    return ET.tostring(el, encoding="unicode")


def build(cfg: DomainConfig) -> str:
    dom = ET.Element("domain", type=cfg.virt_type)
    _sub(dom, "name", cfg.name)
    _sub(dom, "uuid", cfg.uuid)
    _sub(dom, "memory", str(cfg.ram_mb), unit="MiB")
    _sub(dom, "vcpu", str(cfg.vcpus))
    _os(dom, cfg)
    _sub(_sub(dom, "features"), "acpi")
    if cfg.virt_type == "kvm":
        _sub(dom, "cpu", mode="host-model")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    for d in cfg.disks:
        _disk(devices, d)
    for nic in cfg.interfaces:
        _interface(devices, nic)
    if cfg.agent:
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=cfg.console_log, append="on")
    _sub(devices, "console", type="pty")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


# the elements and attributes of a domain XML that name files on the host
_FILE_PATHS = (("./devices/disk/source", "file"), ("./devices/serial/log", "file"),
               ("./devices/console/log", "file"))
_FILE_TEXTS = ("./os/kernel", "./os/initrd")


def _moved(path: str, dirs: dict[str, str]) -> str | None:
    for src, dst in dirs.items():
        if path == src or path.startswith(src.rstrip("/") + "/"):
            return dst.rstrip("/") + path[len(src.rstrip("/")):]
    return None


def relocate(xml: str, dirs: dict[str, str]) -> str:
    """The same domain with every file under a key of `dirs` moved under its value:
    the destination's XML of a live migration (each host keeps instances and cached
    images in its own directories). A disk outside those directories would make the
    destination use the source's path: refused with ValueError. Everything else
    (devices, their addresses, the machine type) stays as the source has it, so the
    guest's ABI is unchanged."""
    root = ET.fromstring(xml)
    for path, attr in _FILE_PATHS:
        for el in root.iterfind(path):
            old = el.get(attr)
            if not old:
                continue
            new = _moved(old, dirs)
            if new is None:
                if path.startswith("./devices/disk"):
                    raise ValueError(f"disk {old} is in none of the migrated directories")
                continue
            el.set(attr, new)
    for path in _FILE_TEXTS:
        for el in root.iterfind(path):
            new = _moved(el.text or "", dirs)
            if new is None:
                what = path.rsplit("/", 1)[1]
                raise ValueError(f"{what} {el.text} is in none of the migrated directories")
            el.text = new
    return ET.tostring(root, encoding="unicode")
