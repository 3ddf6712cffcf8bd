"""Security group rules, the pure part: a rule checked and normalized as Neutron does,
its signature (what makes two rules duplicates), and the rules of a project's
`default` group. The host side turns normalized rules into nwfilter rules; nothing
here is ever written into a filter as text given by a user.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from vmflow.ipam import IpamError

DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")
# protocol numbers Neutron accepts by name; the rest are given as 0-255
PROTOCOL_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17}
PORT_PROTOCOLS = ("tcp", "udp")  # port_range_min/max are ports
DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class Rule:
    direction: str
    ethertype: str
    protocol: str | None  # tcp | udp | icmp | "0".."255" | None: any
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None

    def signature(self) -> str:
        """Two rules with equal signatures are duplicates (Neutron compares every field
        but id and description)."""
        return "|".join("" if v is None else str(v) for v in asdict(self).values())


def _bad(message: str) -> IpamError:
    return IpamError(message, "InvalidInput")


def normalize_protocol(protocol: Any) -> str | None:
    """A name (any case) or number 0-255; the numbers of tcp, udp and icmp become their
    names, so "6" and "tcp" are the same rule."""
    if protocol is None:
        return None
    if isinstance(protocol, bool) or not isinstance(protocol, str | int):
        raise _bad("protocol must be tcp, udp, icmp, a number 0-255 or null")
    text = str(protocol).strip().lower()
    if text in PROTOCOL_NUMBERS:
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        by_number = {v: k for k, v in PROTOCOL_NUMBERS.items()}
        return by_number.get(int(text), str(int(text)))
    raise _bad(f"protocol {protocol!r} is not tcp, udp, icmp, a number 0-255 or null")


def _ports(protocol: str | None, pmin: int | None, pmax: int | None) -> None:
    if pmin is None and pmax is None:
        return
    if protocol in PORT_PROTOCOLS:
        if pmin is None or pmax is None:
            raise _bad("port_range_min and port_range_max go together")
        if not 1 <= pmin <= 65535 or not 1 <= pmax <= 65535:
            raise _bad("ports are 1-65535")
        if pmin > pmax:
            raise _bad(f"port_range_min {pmin} is greater than port_range_max {pmax}")
    elif protocol == "icmp":
        if pmin is None:
            raise _bad("an icmp code (port_range_max) needs a type (port_range_min)")
        for name, v in (("type (port_range_min)", pmin), ("code (port_range_max)", pmax)):
            if v is not None and not 0 <= v <= 255:
                raise _bad(f"the icmp {name} is 0-255")
    else:
        raise _bad("port_range_min/max are only for tcp, udp (ports) and icmp (type, code)")


def normalize(direction: Any, ethertype: Any, protocol: Any, port_range_min: int | None,
              port_range_max: int | None, remote_ip_prefix: str | None,
              remote_group_id: str | None) -> Rule:
    """The rule as stored, or IpamError (400) saying what is wrong with it."""
    if direction not in DIRECTIONS:
        raise _bad(f"direction must be one of {', '.join(DIRECTIONS)}")
    if ethertype not in ETHERTYPES:
        raise _bad(f"ethertype must be one of {', '.join(ETHERTYPES)}")
    proto = normalize_protocol(protocol)
    _ports(proto, port_range_min, port_range_max)
    if remote_ip_prefix is not None and remote_group_id is not None:
        raise _bad("give remote_ip_prefix or remote_group_id, not both")
    prefix = None
    if remote_ip_prefix is not None:
        try:
            net = ipaddress.ip_network(remote_ip_prefix, strict=False)
        except ValueError:
            raise _bad(f"remote_ip_prefix {remote_ip_prefix!r} is not a CIDR") from None
        if f"IPv{net.version}" != ethertype:
            raise IpamError(f"remote_ip_prefix {remote_ip_prefix} is not {ethertype}",
                            "SecurityGroupRuleParameterConflict")
        prefix = str(net)  # Neutron normalizes 10.0.0.5/24 to 10.0.0.0/24
    return Rule(direction, ethertype, proto, port_range_min, port_range_max, prefix,
                remote_group_id)


def default_rules(group_id: str) -> list[Rule]:
    """Neutron's default group: any egress, ingress from members of the same group."""
    return [Rule(d, e, None, None, None, None, group_id if d == "ingress" else None)
            for d in DIRECTIONS for e in ETHERTYPES]
