"""The storage side's network namespace: its names and its underlay address."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmflow import hostbed, storage_netns
from vmflow.settings import Settings


def test_export_locations_show_the_namespace_underlay_address_by_default() -> None:
    assert Settings().nfs_address == storage_netns.ADDRESS == "10.77.0.250"


def test_the_address_is_no_host_of_the_bed() -> None:
    s = Settings(home=Path("/var/tmp/x"), host="h", hosts=8, libvirt_uri="qemu:///system")
    assert storage_netns.ADDRESS not in {h.address for h in hostbed.bed(s)}


def test_each_host_keeps_one_underlay_mac_that_the_reply_table_can_take() -> None:
    """A host started again (an evacuation test does) keeps its MAC, so the reply
    table the storage namespace made earlier still routes its guests' replies."""
    s = Settings(home=Path("/var/tmp/x"), host="h", hosts=300, libvirt_uri="qemu:///system")
    macs = {h.index: h.underlay_mac for h in hostbed.bed(s)}
    assert len(set(macs.values())) == 300
    assert macs == {h.index: h.underlay_mac for h in hostbed.bed(s)}
    assert macs[1] == "02:77:00:00:00:01" and macs[258] == "02:77:00:00:01:02"
    assert "02:77:00:00:00:01" in storage_netns.reply_table({1: macs[1]})


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


def test_the_reply_table_maps_each_hosts_mac_to_its_index() -> None:
    text = storage_netns.reply_table({2: "02:00:00:00:00:02", 1: "aa:bb:cc:dd:ee:01"})
    assert ('iifname "underlay0" ct mark set ether saddr map '
            "{ aa:bb:cc:dd:ee:01 : 1, 02:00:00:00:00:02 : 2 }") in text
    assert text.startswith("table ip vmflow_share_return\ndelete table ip vmflow_share_return\n")
    assert text.count("meta mark set ct mark") == 2  # in, and out before the reroute
    assert "type route hook output" in text


def test_the_reply_table_without_hosts_learns_nothing() -> None:
    text = storage_netns.reply_table({})
    assert "ether saddr" not in text and "meta mark set ct mark" in text


@pytest.mark.parametrize("macs", [{1: "02:00:00:00:00:0G"}, {0: "02:00:00:00:00:01"},
                                  {1: "02:00:00:00:00:01 } drop"}, {1: "AA:BB:CC:DD:EE:FF"}])
def test_the_reply_table_takes_only_host_ports(macs: dict[int, str]) -> None:
    with pytest.raises(ValueError):
        storage_netns.reply_table(macs)
