"""A server's NICs in its define request (vmflow.contracts.instances.Nic): old payloads
and saved specs decode with none; a saved spec's NICs come back as Nic; every
(re)definition builds them into the domain (config_for); hotplug keeps the saved spec
in step (NetworkActivities._saved_nics)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path

import libvirt
import pytest
from temporalio.converter import DataConverter

from activities.hypervisor.libvirt import domain_xml, filter_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.network import kernel
from activities.hypervisor.network.activities import NetworkActivities
from activities.hypervisor.power import config_for, save_spec, spec_path
from vmflow.contracts.instances import DefineDomain, Nic
from vmflow.settings import Settings

IID = str(uuid.uuid4())
NIC = Nic(str(uuid.uuid4()), "fa:16:3e:00:00:07", 4242, 1450, "10.7.0.7")
OPEN = Nic(str(uuid.uuid4()), "fa:16:3e:00:00:08", 4243, 1400, "10.8.0.8", port_security=False)


def spec(*nics: Nic) -> DefineDomain:
    return DefineDomain(IID, 1, 256, "/d/disk", "/c/k", "/c/r", "console=ttyS0", True, None,
                        list(nics))


def test_old_payloads_decode_without_nics() -> None:
    old = {k: v for k, v in asdict(spec()).items() if k != "nics"}
    conv = DataConverter.default.payload_converter
    payload = conv.to_payloads([old])
    (decoded,) = conv.from_payloads(payload, [DefineDomain])
    assert decoded == spec() and decoded.nics == []
    assert DefineDomain(**old).nics == []  # a saved domain.json from before NICs


def test_saved_nics_come_back_as_nics() -> None:
    raw = json.loads(json.dumps(asdict(spec(NIC, OPEN))))
    assert DefineDomain(**raw) == spec(NIC, OPEN)
    conv = DataConverter.default.payload_converter
    (decoded,) = conv.from_payloads(conv.to_payloads([spec(NIC)]), [DefineDomain])
    assert decoded.nics == [NIC]


def test_every_definition_gets_the_nics(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, virt_type="qemu")
    cfg = config_for(s, Connection("test:///default"), spec(NIC, OPEN), tmp_path)
    assert cfg.interfaces == [
        domain_xml.Interface(NIC.mac, kernel.bridge_name(NIC.vni), 1450,
                             filter_xml.filter_name(NIC.port_id), {"IP": NIC.ip}),
        domain_xml.Interface(OPEN.mac, kernel.bridge_name(OPEN.vni), 1400, None, {})]
    xml = domain_xml.build(cfg)
    assert xml.index(NIC.mac) < xml.index(OPEN.mac)  # eth0 first
    # libvirt's own parser takes it (test driver; no bridge needed to define)
    conn = libvirt.open("test:///default")
    try:
        conn.defineXML(xml).undefine()
    finally:
        conn.close()


def test_domain_xml_names_the_bridge_as_the_host_makes_it() -> None:
    assert domain_xml.bridge_name(77) == kernel.bridge_name(77)


@pytest.mark.parametrize("start", [[], [NIC]])
def test_hotplug_keeps_the_saved_spec(tmp_path: Path, start: list[Nic]) -> None:
    s = Settings(home=tmp_path, host="h1")
    acts = NetworkActivities(s, Connection("test:///default"))
    d = s.host_dir() / "instances" / IID
    d.mkdir(parents=True)
    save_spec(d, spec(*start))
    acts._saved_nics(IID, lambda nics: [*[n for n in nics if n.mac != OPEN.mac], OPEN])
    acts._saved_nics(IID, lambda nics: [*[n for n in nics if n.mac != OPEN.mac], OPEN])
    saved = DefineDomain(**json.loads(spec_path(d).read_text()))
    assert saved.nics == [*start, OPEN]  # attached once, after the others
    acts._saved_nics(IID, lambda nics: [n for n in nics if n.mac != OPEN.mac])
    assert DefineDomain(**json.loads(spec_path(d).read_text())).nics == start
    acts._saved_nics(str(uuid.uuid4()), lambda nics: [OPEN])  # no saved spec: nothing
