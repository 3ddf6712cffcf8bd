"""The floating IPs' nft table (activities/hypervisor/network/nat.py): built only from
validated addresses through fixed templates; anything else is refused before a rule
exists. And the outside link's addressing (vmflow.hostbed)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from activities.hypervisor.network import nat
from vmflow import hostbed
from vmflow.processes import StackError
from vmflow.settings import Settings


def test_table_maps_one_to_one_and_masquerades_the_rest() -> None:
    text = nat.table([nat.nat("203.0.113.50", "10.0.0.5", 123)], "external0")
    assert text.startswith("table ip vmflow_nat\ndelete table ip vmflow_nat\n")
    lines = [line.strip() for line in text.splitlines()]
    dnat = ('ip daddr 203.0.113.50 dnat to 10.0.0.5 '
            'comment "vmflow-fip 203.0.113.50 10.0.0.5 123"')
    assert lines.count(dnat) == 2  # prerouting and output
    assert 'iifname "vmfbr123" ip saddr 10.0.0.5 oifname "external0" snat to 203.0.113.50' \
        in lines
    assert 'iifname "vmfbr*" oifname "external0" masquerade' in lines
    # SNAT (90) before the masquerade (100); DNAT (-110) before dstnat
    assert "type nat hook postrouting priority 90; policy accept;" in lines
    assert "type nat hook postrouting priority 100; policy accept;" in lines
    assert lines.count("type nat hook prerouting priority -110; policy accept;") == 1
    assert lines.count("type nat hook output priority -110; policy accept;") == 1
    # what no connection of the guest began goes out neither un-NATed nor masqueraded
    assert 'iifname "vmfbr*" oifname "external0" ct state invalid drop' in lines
    assert ('iifname "vmfbr*" oifname "external0" ct state new '
            'tcp flags & (syn | ack | rst | fin) != syn drop') in lines


def test_empty_table_keeps_only_the_masquerade() -> None:
    text = nat.table([], "external0")
    assert "dnat" not in text and "snat" not in text and "masquerade" in text


@pytest.mark.parametrize("floating,fixed,vni", [
    ("203.0.113.50; flush ruleset", "10.0.0.5", 1),
    ("203.0.113.50", '10.0.0.5" accept #', 1),
    ("203.0.113.50", "10.0.0.5/24", 1),
    ("2001:db8::1", "10.0.0.5", 1),
    ("127.0.0.1", "10.0.0.5", 1),
    ("203.0.113.50", "0.0.0.0", 1),
    ("224.0.0.1", "10.0.0.5", 1),
    ("203.0.113.50", "169.254.169.254", 1),
    ("255.255.255.255", "10.0.0.5", 1),
    ("203.0.113.50", "203.0.113.50", 1),
    ("", "10.0.0.5", 1),
    ("203.0.113.50", "10.0.0.5", 0),
    ("203.0.113.50", "10.0.0.5", 16777216),
    ("203.0.113.50", "10.0.0.5", True),
    ("203.0.113.50", "10.0.0.5", "1; drop"),
])
def test_bad_input_is_refused(floating: str, fixed: str, vni: int) -> None:
    with pytest.raises(ValueError):
        nat.nat(floating, fixed, vni)


def test_only_validated_mappings_become_rules() -> None:
    forged = nat.Nat("1.2.3.4; flush ruleset", "10.0.0.5", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        nat.table([forged], "external0")
    with pytest.raises(ValueError):
        nat.table([nat.nat("203.0.113.50", "10.0.0.5", 1),
                   nat.nat("203.0.113.50", "10.0.0.6", 2)], "external0")
    with pytest.raises(ValueError):
        nat.table([], 'external0" accept')


def rule(comment: str, chain: str = "pre") -> dict[str, object]:
    return {"rule": {"family": "ip", "table": nat.TABLE, "chain": chain, "handle": 3,
                     "comment": comment, "expr": []}}


def test_parse_reads_back_what_table_wrote_and_skips_the_rest() -> None:
    listing = json.dumps({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        rule("vmflow-fip 203.0.113.50 10.0.0.5 123"),
        rule("vmflow-fip 203.0.113.51 10.0.0.6 7", chain="out"),  # pre only
        rule("vmflow-fip 203.0.113.52 not-an-ip 7"),
        rule("vmflow-fip 203.0.113.53 10.0.0.7"),
        rule("something else"),
    ]})
    assert nat.parse(listing) == [nat.Nat(ipaddress.IPv4Address("203.0.113.50"),
                                          ipaddress.IPv4Address("10.0.0.5"), 123)]
    assert nat.parse("") == []


def test_outside_link_addresses(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, host="fipu", hosts=2, external_cidr="198.51.100.0/24")
    h1, h2 = hostbed.bed(s)
    assert str(hostbed.outside_address(s)) == "198.51.100.1/24"
    assert [str(hostbed.external_address(s, h)) for h in (h1, h2)] == [
        "198.51.100.2/24", "198.51.100.3/24"]
    assert hostbed.outside_netns(s) == hostbed.switch_netns(s)[:-len("switch")] + "outside"
    for bad in ("198.51.100.1/24", "2001:db8::/64", "10.0.0.0/30", "nonsense"):
        with pytest.raises((StackError, ValueError)):
            hostbed.external_network(s.model_copy(update={"external_cidr": bad}))
