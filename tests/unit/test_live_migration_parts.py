"""The pure parts of live migration: the destination's XML (every file moved under the
destination's directories, nothing else changed), the flags, which disks are copied,
and progress from the job's stats."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from activities.hypervisor.libvirt.domain_xml import Disk, DomainConfig, build, relocate
from activities.hypervisor.migrate import disks_to_copy, migration_flags
from vmflow.contracts.migrations import MigrationProgress

UUID = "0b7e5a6c-8f3e-4d0a-9a54-5c1f6a3b2d11"
SRC = "/var/lib/vmflow/hosts/hva"
DST = "/var/lib/vmflow/hosts/hvb"


def source_xml() -> str:
    inst = f"{SRC}/instances/{UUID}"
    return build(DomainConfig(
        uuid=UUID, name=f"vmflow-{UUID}", vcpus=1, ram_mb=256, virt_type="qemu",
        disks=[Disk(f"{inst}/disk", "vda", serial="root"),
               Disk(f"{inst}/config.iso", "vdz", fmt="raw", serial="config-2", readonly=True)],
        console_log=f"{inst}/console.log", kernel=f"{SRC}/cache/k-id", initrd=f"{SRC}/cache/r-id",
        cmdline="console=ttyS0"))


DIRS = {f"{SRC}/instances/{UUID}": f"{DST}/instances/{UUID}", f"{SRC}/cache": f"{DST}/cache"}


def files(xml: str) -> list[str]:
    root = ET.fromstring(xml)
    return ([s.get("file", "") for s in root.iterfind("./devices/disk/source")]
            + [el.get("file", "") for el in root.iterfind("./devices/serial/log")]
            + [root.findtext("./os/kernel") or "", root.findtext("./os/initrd") or ""])


def test_every_file_moves_to_the_destination_and_nothing_else_changes() -> None:
    src = source_xml()
    dst = relocate(src, DIRS)
    assert files(dst) == [f"{DST}/instances/{UUID}/disk", f"{DST}/instances/{UUID}/config.iso",
                          f"{DST}/instances/{UUID}/console.log", f"{DST}/cache/k-id",
                          f"{DST}/cache/r-id"]
    assert not any(SRC in f for f in files(dst))
    # the same domain otherwise: swap the paths back and the XML is the source's
    back = relocate(dst, {v: k for k, v in DIRS.items()})
    assert ET.canonicalize(back) == ET.canonicalize(src.strip())


def test_a_prefix_that_is_only_a_string_prefix_is_not_a_directory() -> None:
    xml = source_xml().replace(f"{SRC}/cache/k-id", f"{SRC}/cache-other/k-id")
    with pytest.raises(ValueError, match="kernel"):
        relocate(xml, DIRS)


def test_a_disk_outside_the_migrated_directories_is_refused() -> None:
    xml = source_xml().replace(f"{SRC}/instances/{UUID}/disk", "/elsewhere/disk")
    with pytest.raises(ValueError, match="/elsewhere/disk"):
        relocate(xml, DIRS)


def test_only_writable_disks_are_copied() -> None:
    assert disks_to_copy(source_xml()) == ["vda"]


def test_flags_copy_the_top_layer_peer_to_peer_and_move_the_definition() -> None:
    f = migration_flags(True)
    for flag in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_PEER2PEER,
                 libvirt.VIR_MIGRATE_PERSIST_DEST, libvirt.VIR_MIGRATE_UNDEFINE_SOURCE,
                 libvirt.VIR_MIGRATE_NON_SHARED_INC):
        assert f & flag
    assert not f & libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert not f & libvirt.VIR_MIGRATE_UNSAFE  # never: local disks are not shared storage
    assert not migration_flags(False) & libvirt.VIR_MIGRATE_NON_SHARED_INC


def test_progress_counts_memory_and_disk_and_never_says_done_while_running() -> None:
    p = MigrationProgress.of({"memory_total": 300, "memory_processed": 150,
                              "memory_remaining": 150, "disk_total": 100,
                              "disk_processed": 100, "disk_remaining": 0, "type": 2})
    assert (p.memory_processed, p.disk_total, p.percent) == (150, 100, 62)
    assert MigrationProgress.of({"memory_total": 10, "memory_processed": 10}).percent == 99
    assert MigrationProgress.of({}).percent == 0
