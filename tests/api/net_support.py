"""What the network API tests share: row counts (bad input must change none) and
helpers that make a network with its subnet."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from tests.api.conftest import Caller, session
from vmflow.network_models import (
    FloatingIp,
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

TABLES = (Network, Subnet, Port, IpAllocation, PortSecurityGroup, SecurityGroup,
          SecurityGroupRule, FloatingIp)


def net_counts() -> dict[str, int]:
    with session() as s:
        return {t.__name__: s.exec(select(func.count()).select_from(t)).one() for t in TABLES}


async def make_net(api: httpx.AsyncClient, who: Caller, cidr: str | None = "10.0.0.0/24",
                   **subnet: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A network of `who`'s (keys as in the body: "router:external", shared) and, unless
    cidr is None, its subnet (extra subnet fields in `subnet`)."""
    net_fields = {k: subnet.pop(k) for k in ("router:external", "shared", "name")
                  if k in subnet}
    r = await api.post("/v1/networks", headers=who.h, json=net_fields)
    assert r.status_code == 201, r.text
    net = r.json()
    if cidr is None:
        return net, None
    r = await api.post("/v1/subnets", headers=who.h,
                       json={"network_id": net["id"], "cidr": cidr, **subnet})
    assert r.status_code == 201, r.text
    return net, r.json()


async def make_port(api: httpx.AsyncClient, who: Caller, network_id: str,
                    **fields: Any) -> dict[str, Any]:
    r = await api.post("/v1/ports", headers=who.h, json={"network_id": network_id, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
