"""IP address management, the pure part: a subnet's CIDR, gateway and allocation pools
checked and defaulted as Neutron does, the free addresses of the pools in order,
requested addresses checked, MAC addresses, VXLAN ids, and the /24 an auto network
takes from its pool. The atomic allocation in the database is vmflow/ip_allocation.py.

Only IPv4 subnets (one per network); every error is an IpamError whose `type` is
Neutron's name for it, so the API can answer the same 4xx Neutron would.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MIN_PREFIXLEN = 8  # anything larger than a /8 is a typo, not a tenant subnet
MAX_PREFIXLEN = 30  # a /31 or /32 has no room for a gateway and an address
MAX_POOLS = 16
MAX_DNS_NAMESERVERS = 5  # Neutron's max_dns_nameservers
# Neutron's base_mac: fa = locally administered (bit 1) unicast (bit 0 clear)
MAC_PREFIX = "fa:16:3e"
VNI_MIN, VNI_MAX = 1, (1 << 24) - 1  # VXLAN network identifiers


class IpamError(ValueError):
    """Bad input (HTTP 400) unless `conflict` (409); `type` is Neutron's name."""

    def __init__(self, message: str, type: str = "InvalidInput", conflict: bool = False):
        super().__init__(message)
        self.message = message
        self.type = type
        self.conflict = conflict


def _bad(message: str) -> IpamError:
    return IpamError(message, "InvalidInput")


@dataclass(frozen=True)
class SubnetPlan:
    cidr: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, str]]


def parse_cidr(cidr: str) -> ipaddress.IPv4Network:
    """An IPv4 network written as its network address and prefix, with room for a
    gateway and at least one address."""
    if not isinstance(cidr, str) or "/" not in cidr:
        raise _bad(f"cidr {cidr!r} is not a CIDR such as 10.0.0.0/24")
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise _bad(f"cidr {cidr!r} is not a valid CIDR") from None
    if net.version != 4:
        raise _bad(f"cidr {cidr!r} is not IPv4; only IPv4 subnets are supported")
    if str(net) != cidr.strip():
        raise _bad(f"cidr {cidr!r} has host bits set; did you mean {net}?")
    if net.prefixlen > MAX_PREFIXLEN:
        raise _bad(f"cidr {cidr!r} has no room for a gateway and an address "
                   f"(the longest prefix is /{MAX_PREFIXLEN})")
    if net.prefixlen < MIN_PREFIXLEN:
        raise _bad(f"cidr {cidr!r} is too large (the shortest prefix is /{MIN_PREFIXLEN})")
    return net


def parse_ipv4(value: Any, what: str) -> ipaddress.IPv4Address:
    if not isinstance(value, str):
        raise _bad(f"{what} must be an IPv4 address as a string")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise _bad(f"{what} {value!r} is not a valid IP address") from None
    if ip.version != 4:
        raise _bad(f"{what} {value!r} is not IPv4")
    return ip


def _host(net: ipaddress.IPv4Network, ip: ipaddress.IPv4Address, what: str) -> None:
    """`ip` is a usable host address of `net` (not its network or broadcast address)."""
    if ip not in net:
        raise _bad(f"{what} {ip} is outside the subnet {net}")
    if ip in (net.network_address, net.broadcast_address):
        raise _bad(f"{what} {ip} is the network or broadcast address of {net}")


def _ranges(pools: list[dict[str, str]]) -> list[tuple[int, int]]:
    return [(int(ipaddress.IPv4Address(p["start"])), int(ipaddress.IPv4Address(p["end"])))
            for p in pools]


def _as_pools(ranges: Iterable[tuple[int, int]]) -> list[dict[str, str]]:
    return [{"start": str(ipaddress.IPv4Address(a)), "end": str(ipaddress.IPv4Address(b))}
            for a, b in ranges]


def default_pools(net: ipaddress.IPv4Network,
                  gateway: ipaddress.IPv4Address | None) -> list[dict[str, str]]:
    """Every host address but the gateway (Neutron's default)."""
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    if gateway is None:
        return _as_pools([(first, last)])
    g = int(gateway)
    return _as_pools([r for r in ((first, g - 1), (g + 1, last)) if r[0] <= r[1]])


def check_pools(net: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None,
                pools: Any) -> list[dict[str, str]]:
    """Each pool {start, end} inside the subnet's host addresses, start <= end, no two
    overlapping, none holding the gateway. Answers them normalized and sorted."""
    if not isinstance(pools, list) or not pools:
        raise _bad("allocation_pools must be a non-empty list of {start, end}")
    if len(pools) > MAX_POOLS:
        raise _bad(f"at most {MAX_POOLS} allocation pools")
    ranges = []
    for i, pool in enumerate(pools):
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise _bad(f"allocation_pools[{i}] must be exactly {{start, end}}")
        start = parse_ipv4(pool["start"], f"allocation_pools[{i}].start")
        end = parse_ipv4(pool["end"], f"allocation_pools[{i}].end")
        _host(net, start, f"allocation_pools[{i}].start")
        _host(net, end, f"allocation_pools[{i}].end")
        if start > end:
            raise _bad(f"allocation_pools[{i}]: start {start} is after end {end}")
        if gateway is not None and start <= gateway <= end:
            raise IpamError(f"allocation_pools[{i}] ({start}-{end}) holds the gateway "
                            f"{gateway}", "GatewayConflictWithAllocationPools")
        ranges.append((int(start), int(end)))
    ranges.sort()
    for (a1, b1), (a2, b2) in zip(ranges, ranges[1:], strict=False):
        if a2 <= b1:
            raise IpamError(f"allocation pools {_as_pools([(a1, b1)])[0]} and "
                            f"{_as_pools([(a2, b2)])[0]} overlap", "OverlappingAllocationPools")
    return _as_pools(ranges)


def plan_subnet(cidr: str, gateway_ip: str | None, gateway_given: bool,
                allocation_pools: list[dict[str, str]] | None) -> SubnetPlan:
    """The subnet as it will be stored. gateway_ip not given: the first host address;
    given as None: no gateway (Neutron). allocation_pools None: the rest of the hosts."""
    net = parse_cidr(cidr)
    gateway: ipaddress.IPv4Address | None
    if not gateway_given:
        gateway = net.network_address + 1
    elif gateway_ip is None:
        gateway = None
    else:
        gateway = parse_ipv4(gateway_ip, "gateway_ip")
        _host(net, gateway, "gateway_ip")
    pools = (default_pools(net, gateway) if allocation_pools is None
             else check_pools(net, gateway, allocation_pools))
    return SubnetPlan(str(net), None if gateway is None else str(gateway), pools)


def check_nameservers(servers: list[str]) -> list[str]:
    if len(servers) > MAX_DNS_NAMESERVERS:
        raise _bad(f"at most {MAX_DNS_NAMESERVERS} dns_nameservers")
    out = []
    for s in servers:
        try:
            out.append(str(ipaddress.ip_address(s)))
        except ValueError:
            raise _bad(f"dns_nameservers: {s!r} is not an IP address") from None
    if len(set(out)) != len(out):
        raise _bad("dns_nameservers has a duplicate")
    return out


def in_pools(pools: list[dict[str, str]], ip: str) -> bool:
    n = int(ipaddress.IPv4Address(ip))
    return any(a <= n <= b for a, b in _ranges(pools))


def check_requested(cidr: str, pools: list[dict[str, str]], ip_address: str) -> str:
    """A requested fixed IP: IPv4, inside the subnet and inside one of its pools."""
    ip = parse_ipv4(ip_address, "ip_address")
    net = ipaddress.IPv4Network(cidr)
    if ip not in net:
        raise _bad(f"ip_address {ip} is outside the subnet {net}")
    if not in_pools(pools, str(ip)):
        raise _bad(f"ip_address {ip} is not in an allocation pool of {net}")
    return str(ip)


def free_addresses(pools: list[dict[str, str]], used: set[str]) -> Iterator[str]:
    """The pools' addresses not in `used`, lowest first; lazy, so a /8 costs nothing."""
    for a, b in _ranges(pools):
        for n in range(a, b + 1):
            ip = str(ipaddress.IPv4Address(n))
            if ip not in used:
                yield ip


def pool_size(pools: list[dict[str, str]]) -> int:
    return sum(b - a + 1 for a, b in _ranges(pools))


def random_mac() -> str:
    """A locally administered unicast MAC under Neutron's fa:16:3e prefix."""
    return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def first_free(used: Iterable[int], lo: int = VNI_MIN, hi: int = VNI_MAX) -> int | None:
    """The smallest integer in [lo, hi] not in `used`, or None."""
    taken = set(used)
    for n in range(lo, hi + 1):
        if n not in taken:
            return n
    return None


def overlapping(cidr: str, others: Iterable[str]) -> str | None:
    """The first of `others` that shares an address with `cidr`, or None. Every
    subnet is routed in each host's one network namespace (the guests' gateways and
    the floating range side by side), so no two may overlap, whoever owns them."""
    net = ipaddress.ip_network(cidr, strict=False)
    for other in others:
        if net.overlaps(ipaddress.ip_network(other, strict=False)):
            return other
    return None


def auto_cidr(pool: str, taken: Iterable[str], prefixlen: int = 24) -> str | None:
    """The first /prefixlen of `pool` that overlaps none of `taken`, or None."""
    net = ipaddress.ip_network(pool, strict=True)
    if net.version != 4 or net.prefixlen > prefixlen:
        raise _bad(f"the auto network pool {pool} must be IPv4 and hold /{prefixlen}s")
    others = [ipaddress.ip_network(t, strict=False) for t in taken]
    for candidate in net.subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(o) for o in others):
            return str(candidate)
    return None
