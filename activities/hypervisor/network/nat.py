"""The nft table vmflow owns in a host's namespace (`ip vmflow_nat`): floating IPs as 1:1
DNAT/SNAT, and masquerade for guests without one. Pure text in, text out: the rules are
built only from validated `ipaddress` objects, vni integers and fixed names through fixed
templates; nothing a user typed reaches nft as text.

Priorities are numbers (nft 1.0.6 refuses `dstnat - 10` in an output chain): DNAT at
-110 runs before anything at dstnat (-100); the floating IPs' SNAT at 90 runs before
the masquerade at 100, and the first NAT chain that maps a connection wins, so a guest
with a floating IP leaves as its floating IP and the others as the host.

Each floating IP's DNAT rule carries a comment "vmflow-fip <floating> <fixed> <vni>":
the table itself is the record of what this host NATs (`parse`).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

TABLE = "vmflow_nat"
COMMENT_TAG = "vmflow-fip"
BRIDGE_PREFIX = "vmfbr"  # activities/hypervisor/network/kernel.py names bridges so
MAX_VNI = 16777215


@dataclass(frozen=True, order=True)
class Nat:
    floating: ipaddress.IPv4Address
    fixed: ipaddress.IPv4Address
    vni: int


def address(value: str, what: str) -> ipaddress.IPv4Address:
    """A unicast IPv4 address a guest or the outside can have, or ValueError."""
    ip = ipaddress.ip_address(value)  # ValueError for anything else
    if not isinstance(ip, ipaddress.IPv4Address):
        raise ValueError(f"{what} {value!r} is not IPv4")
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_link_local \
            or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"{what} {ip} cannot be NATed")
    return ip


def nat(floating: str, fixed: str, vni: int) -> Nat:
    if isinstance(vni, bool) or not isinstance(vni, int) or not 1 <= vni <= MAX_VNI:
        raise ValueError(f"vni {vni!r} is not 1..{MAX_VNI}")
    n = Nat(address(floating, "floating IP"), address(fixed, "fixed IP"), vni)
    if n.floating == n.fixed:
        raise ValueError(f"floating IP {n.floating} is its own fixed IP")
    return n


def _interface(name: str) -> str:
    """A fixed interface name of ours (external0, vmfbr<vni>): checked all the same."""
    if not (0 < len(name) <= 15 and all(c.isalnum() or c in "-_" for c in name)):
        raise ValueError(f"interface name {name!r}")
    return name


# What a guest sends outside that no connection of its own began: not NATed, dropped.
# A TCP segment in mid-stream (a guest that just arrived by live migration answering
# a connection its floating IP's old host still receives) would otherwise be
# masqueraded to this host's address, and the outside's RST for it would kill the
# connection; dropped, the outside retransmits until the floating IP has moved.
GUARD = """\tchain forward {{
\t\ttype filter hook forward priority 0; policy accept;
\t\tiifname "{br}" oifname "{ext}" ct state invalid drop
\t\tiifname "{br}" oifname "{ext}" ct state new tcp flags & (syn | ack | rst | fin) != syn drop
\t}}
"""


def table(nats: list[Nat], external_dev: str) -> str:
    """The whole table, for `nft -f -`: created if missing, emptied, filled, in one
    transaction (no moment with half the rules)."""
    ext = _interface(external_dev)
    pre, post = [], []
    for n in sorted(set(nats)):
        if not isinstance(n.floating, ipaddress.IPv4Address) or \
                not isinstance(n.fixed, ipaddress.IPv4Address) or not 1 <= n.vni <= MAX_VNI:
            raise ValueError(f"not a validated mapping: {n!r}")
        br = _interface(f"{BRIDGE_PREFIX}{int(n.vni)}")
        pre.append(f'ip daddr {n.floating} dnat to {n.fixed} '
                   f'comment "{COMMENT_TAG} {n.floating} {n.fixed} {int(n.vni)}"')
        post.append(f'iifname "{br}" ip saddr {n.fixed} oifname "{ext}" snat to {n.floating}')
    floating = [n.floating for n in nats]
    if len(set(floating)) != len(floating):
        raise ValueError("a floating IP mapped twice")

    def chain(name: str, hook: str, prio: int, rules: list[str]) -> str:
        body = "".join(f"\t\t{r}\n" for r in rules)
        return (f"\tchain {name} {{\n\t\ttype nat hook {hook} priority {prio}; "
                f"policy accept;\n{body}\t}}\n")

    return (f"table ip {TABLE}\ndelete table ip {TABLE}\n"
            f"table ip {TABLE} {{\n"
            + chain("pre", "prerouting", -110, pre)
            + chain("out", "output", -110, pre)
            + chain("post", "postrouting", 90, post)
            + chain("egress", "postrouting", 100,
                    [f'iifname "{BRIDGE_PREFIX}*" oifname "{ext}" masquerade'])
            + GUARD.format(br=f"{BRIDGE_PREFIX}*", ext=ext)
            + "}\n")


def parse(listing: str) -> list[Nat]:
    """The mappings in `nft -j list table ip vmflow_nat` (the pre chain's comments);
    a comment that does not parse is skipped (the next write drops its rule)."""
    found: set[Nat] = set()
    items: list[dict[str, Any]] = json.loads(listing or "{}").get("nftables", [])
    for item in items:
        rule = item.get("rule")
        if not rule or rule.get("chain") != "pre":
            continue
        words = str(rule.get("comment", "")).split()
        if len(words) != 4 or words[0] != COMMENT_TAG or not words[3].isdigit():
            continue
        try:
            found.add(nat(words[1], words[2], int(words[3])))
        except ValueError:
            continue
    return sorted(found)
