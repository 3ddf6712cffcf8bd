"""The storage side's network namespace: its names and its underlay address."""

from __future__ import annotations

from pathlib import Path

from vmflow import hostbed, storage_netns
from vmflow.settings import Settings


def test_export_locations_show_the_namespace_underlay_address_by_default() -> None:
    assert Settings().nfs_address == storage_netns.ADDRESS == "10.77.0.250"


def test_the_address_is_no_host_of_the_bed() -> None:
    s = Settings(home=Path("/var/tmp/x"), host="h", hosts=8, libvirt_uri="qemu:///system")
    assert storage_netns.ADDRESS not in {h.address for h in hostbed.bed(s)}


def test_each_stack_home_has_its_own_namespace() -> None:
    a, b = Settings(home=Path("/var/tmp/a")), Settings(home=Path("/var/tmp/b"))
    assert storage_netns.name(a) == storage_netns.name(Settings(home=Path("/var/tmp/a")))
    assert storage_netns.name(a) != storage_netns.name(b)
    assert storage_netns.name(a).startswith("vmflow-storage-")
    assert storage_netns.path(a) == Path("/run/netns") / storage_netns.name(a)


def test_commands_change_only_the_network_namespace() -> None:
    s = Settings(home=Path("/var/tmp/a"))
    assert storage_netns.inside(s, "ss", "-ltn") == [
        "nsenter", f"--net=/run/netns/{storage_netns.name(s)}", "ss", "-ltn"]
