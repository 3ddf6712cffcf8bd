"""Pure nwfilter-XML builder: a port's security-group rules in, one libvirt filter out.

One filter per port (`vmflow-port-<port id>`): libvirt's stock `clean-traffic` (no MAC,
IP or ARP spoofing; the port's address is the filter's IP parameter), DHCP, then the
rules (nwfilter matches are stateful: replies to what a rule accepts pass), then drop
everything else in both directions. Every value is checked (ipaddress, ranges, a
closed set of protocols and directions) and set as an attribute by ElementTree.
"""

from __future__ import annotations

import ipaddress
import uuid
import xml.etree.ElementTree as ET

from vmflow.contracts.networks import SecurityGroupRule

PROTOCOLS = {"tcp", "udp", "icmp", None}
DIRECTIONS = {"ingress": "in", "egress": "out"}
RULE_PRIORITY = "500"


def filter_name(port_id: str) -> str:
    return f"vmflow-port-{uuid.UUID(port_id)}"


def _port(value: int | None) -> str | None:
    if value is None:
        return None
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is outside 0..65535")
    return str(value)


def _match(rule: SecurityGroupRule) -> ET.Element:
    if rule.protocol not in PROTOCOLS:
        raise ValueError(f"protocol {rule.protocol!r} is not one of tcp, udp, icmp or any")
    m = ET.Element(rule.protocol or "all")
    if rule.remote_ip_prefix:
        net = ipaddress.IPv4Network(rule.remote_ip_prefix, strict=False)
        side = "src" if rule.direction == "ingress" else "dst"
        m.set(f"{side}ipaddr", str(net.network_address))
        m.set(f"{side}ipmask", str(net.prefixlen))
    lo, hi = _port(rule.port_range_min), _port(rule.port_range_max)
    if rule.protocol == "icmp":  # Neutron: min is the ICMP type, max its code
        if lo is not None:
            m.set("type", lo)
        if hi is not None:
            m.set("code", hi)
    elif rule.protocol in ("tcp", "udp") and lo is not None:
        m.set("dstportstart", lo)
        m.set("dstportend", hi if hi is not None else lo)
    elif lo is not None or hi is not None:
        raise ValueError("a port range needs protocol tcp, udp or icmp")
    return m


def build(port_id: str, rules: list[SecurityGroupRule], filter_uuid: str | None = None) -> str:
    """The port's filter; `filter_uuid`: the one it has, which a redefinition must keep."""
    root = ET.Element("filter", name=filter_name(port_id), chain="root")
    if filter_uuid:
        ET.SubElement(root, "uuid").text = str(uuid.UUID(filter_uuid))
    ET.SubElement(root, "filterref", filter="clean-traffic")
    for direction, sport, dport in (("out", "68", "67"), ("in", "67", "68")):  # DHCP
        r = ET.SubElement(root, "rule", action="accept", direction=direction, priority="100")
        ET.SubElement(r, "udp", srcportstart=sport, dstportstart=dport)
    for rule in rules:
        if rule.direction not in DIRECTIONS:
            raise ValueError(f"direction {rule.direction!r} is not ingress or egress")
        if rule.ethertype != "IPv4":
            continue  # the networks are IPv4 only: an IPv6 rule matches nothing
        r = ET.SubElement(root, "rule", action="accept", direction=DIRECTIONS[rule.direction],
                          priority=RULE_PRIORITY)
        r.append(_match(rule))
    drop = ET.SubElement(root, "rule", action="drop", direction="inout", priority="1000")
    ET.SubElement(drop, "all")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
