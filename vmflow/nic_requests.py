"""A server's `networks` value read as the NICs it asks for (Nova 2.37+), the pure part
of what the launch will call (api/services/nics.py adds the database):
`"none"` (no NIC), `"auto"` (the project's one network, made on first use: Nova's
get-me-a-network), or a list of `{"uuid": <network>[, "fixed_ip": <ip>]}` (a new port
there) and `{"port": <port>}` (an existing port of the project, not in use). `[]` is
read as `"none"`, as Nova does below 2.37.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmflow.ipam import IpamError, parse_ipv4

AUTO_NETWORK_NAME = "auto_allocated_network"  # Neutron's name for it
MAX_NICS = 8


@dataclass(frozen=True)
class NicRequest:
    """A port to create on network_id (port_id None), or the existing port_id."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None


@dataclass(frozen=True)
class NicPlan:
    kind: str  # none | auto | list
    requests: tuple[NicRequest, ...] = ()


def _bad(message: str) -> IpamError:
    return IpamError(message, "InvalidInput")


def parse_networks(value: Any) -> NicPlan:
    """The plan for a `networks` value; IpamError (400) for anything else."""
    if value in ("none", []):
        return NicPlan("none")
    if value == "auto":
        return NicPlan("auto")
    if not isinstance(value, list):
        raise _bad('networks must be "auto", "none" or a list of {uuid} or {port}')
    if len(value) > MAX_NICS:
        raise _bad(f"at most {MAX_NICS} networks")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not item or set(item) - {"uuid", "port", "fixed_ip"}:
            raise _bad(f"networks[{i}] must be {{uuid[, fixed_ip]}} or {{port}}")
        uuid, port, fixed_ip = item.get("uuid"), item.get("port"), item.get("fixed_ip")
        if (uuid is None) == (port is None):
            raise _bad(f"networks[{i}] needs exactly one of uuid and port")
        ref = uuid if port is None else port
        if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
            raise _bad(f"networks[{i}]: uuid or port must be an id")
        if fixed_ip is not None:
            if port is not None:
                raise _bad(f"networks[{i}]: fixed_ip goes with uuid, not port")
            fixed_ip = str(parse_ipv4(fixed_ip, f"networks[{i}].fixed_ip"))
        out.append(NicRequest(network_id=uuid, port_id=port, fixed_ip=fixed_ip))
    ports = [r.port_id for r in out if r.port_id]
    if len(set(ports)) != len(ports):
        raise _bad("the same port is given twice")
    return NicPlan("list", tuple(out))


def choose_auto(available: list[str]) -> str | None:
    """Nova's "auto": the one network the project can use; None when it has none (then
    one is made); 409 NetworkAmbiguous when it has several."""
    if len(available) > 1:
        raise IpamError(f"{len(available)} networks are available; choose one with "
                        "networks: [{uuid}]", "NetworkAmbiguous", conflict=True)
    return available[0] if available else None
