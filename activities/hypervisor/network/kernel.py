"""A network's links in the host's network namespace: a bridge holding the subnet's
gateway address, and a VXLAN port joining it to the network's other hosts over the
underlay. Every command runs through `ip netns exec <host netns>`
(activities/hypervisor/underlay.py); a host without a namespace gets no guest network,
so nothing of a guest network ever exists in the machine's own namespace.

Distributed gateway: every host of a network puts the same gateway address with the
same MAC on its bridge, so a guest always reaches its own host's gateway (and DHCP
server), also after a live migration. Frames the host itself sends never go out of a
VXLAN port, and frames from a VXLAN port are never delivered to the host (ebtables,
one pair of rules for all networks): one host never answers another host's guests,
and no bridge sees its own MAC coming back over the tunnel.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from typing import Any

from activities.hypervisor.underlay import in_host_netns
from vmflow.contracts.networks import NetworkSpec
from vmflow.settings import Settings

BRIDGE_PREFIX = "vmfbr"
VXLAN_PREFIX = "vmfvx"
VXLAN_PORT = "4789"
FLOOD_MAC = "00:00:00:00:00:00"  # a VXLAN fdb entry with this MAC: send floods to dst
# ebtables filter rules: (chain, match); `+` is ebtables' interface wildcard
GUARD_RULES = (("INPUT", ["-i", f"{VXLAN_PREFIX}+"]), ("OUTPUT", ["-o", f"{VXLAN_PREFIX}+"]))


class NetworkCommandError(RuntimeError):
    """A command in the host's namespace failed (retryable: the host may be busy)."""


def bridge_name(vni: int) -> str:
    return f"{BRIDGE_PREFIX}{vni}"


def vxlan_name(vni: int) -> str:
    return f"{VXLAN_PREFIX}{vni}"


def gateway_mac(network_id: str) -> str:
    """The same on every host of the network; locally administered, unicast."""
    digest = hashlib.sha256(f"vmflow-gateway:{network_id}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def run(settings: Settings, argv: list[str],
        check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(in_host_netns(settings, argv), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise NetworkCommandError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def links(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every link of the host's namespace by name, with its details (`ip -j -d`)."""
    out = run(settings, ["ip", "-j", "-d", "link", "show"]).stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def ensure(settings: Settings, spec: NetworkSpec, underlay: str) -> None:
    br, vx = bridge_name(spec.vni), vxlan_name(spec.vni)
    have = links(settings)
    if br not in have:
        run(settings, ["ip", "link", "add", br, "type", "bridge", "stp_state", "0",
                       "forward_delay", "0"])
    run(settings, ["ip", "link", "set", br, "address", gateway_mac(spec.network_id),
                   "mtu", str(spec.mtu), "alias", spec.network_id])
    _ensure_address(settings, spec)
    info = have.get(vx, {}).get("linkinfo", {}).get("info_data", {})
    if vx in have and (info.get("id") != spec.vni or info.get("local") != underlay):
        run(settings, ["ip", "link", "del", vx])  # made for another vni or underlay
        have.pop(vx)
    if vx not in have:
        run(settings, ["ip", "link", "add", vx, "type", "vxlan", "id", str(spec.vni),
                       "local", underlay, "dstport", VXLAN_PORT])
    run(settings, ["ip", "link", "set", vx, "master", br, "mtu", str(spec.mtu), "up"])
    run(settings, ["ip", "link", "set", br, "up"])
    _ensure_peers(settings, vx, [p for p in spec.peers if p != underlay])
    ensure_guard(settings)


def _ensure_address(settings: Settings, spec: NetworkSpec) -> None:
    """Exactly the gateway address on the bridge (none without a gateway)."""
    br = bridge_name(spec.vni)
    net = ipaddress.ip_network(spec.cidr)
    want = f"{spec.gateway_ip}/{net.prefixlen}" if spec.gateway_ip else None
    out = run(settings, ["ip", "-j", "addr", "show", "dev", br]).stdout
    have = {f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]")
            for a in link.get("addr_info", []) if a.get("family") == "inet"}
    for stale in have - {want}:
        run(settings, ["ip", "addr", "del", stale, "dev", br])
    if want and want not in have:
        run(settings, ["ip", "addr", "add", want, "dev", br])


def _ensure_peers(settings: Settings, vx: str, peers: list[str]) -> None:
    """Head-end replication: one flood entry per peer host, none for a host that left."""
    out = run(settings, ["bridge", "-j", "fdb", "show", "dev", vx]).stdout
    have = {e["dst"] for e in json.loads(out or "[]")
            if e.get("mac") == FLOOD_MAC and "dst" in e}
    for gone in have - set(peers):
        run(settings, ["bridge", "fdb", "del", FLOOD_MAC, "dev", vx, "dst", gone])
    for peer in sorted(set(peers) - have):
        run(settings, ["bridge", "fdb", "append", FLOOD_MAC, "dev", vx, "dst", peer])


def ensure_guard(settings: Settings) -> None:
    """Once per host. ebtables-nft has no working -C (check): the listing it is."""
    for chain, match in GUARD_RULES:
        listed = run(settings, ["ebtables", "-t", "filter", "-L", chain]).stdout.splitlines()
        if " ".join([*match, "-j", "DROP"]) not in (line.strip() for line in listed):
            run(settings, ["ebtables", "-t", "filter", "-A", chain, *match, "-j", "DROP"])


def remove(settings: Settings, vni: int) -> None:
    """The vxlan and the bridge gone (the guard rules stay: they match no link then)."""
    have = links(settings)
    for name in (vxlan_name(vni), bridge_name(vni)):
        if name in have:
            run(settings, ["ip", "link", "del", name])


def made_links(settings: Settings) -> dict[int, tuple[str | None, bool, bool]]:
    """vni -> (network id from the bridge's alias, bridge exists, vxlan exists), for
    every bridge or vxlan vmflow made in the namespace."""
    have = links(settings)
    found: dict[int, tuple[str | None, bool, bool]] = {}
    for name in have:
        for prefix in (BRIDGE_PREFIX, VXLAN_PREFIX):
            tail = name[len(prefix):]
            if name.startswith(prefix) and tail.isdigit():
                vni = int(tail)
                br = have.get(bridge_name(vni))
                found[vni] = (br.get("ifalias") if br else None, br is not None,
                              vxlan_name(vni) in have)
    return found


def bridge_exists(settings: Settings, vni: int) -> bool:
    return bridge_name(vni) in links(settings)
