"""The database steps of floating IPs (workflows/network/floating_ip_sync.py and
workflows/_base/floating.py): where a floating IP's NAT belongs now, its status, and
the floating IPs of an instance that moves. Nothing here touches a host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.control.base import ClientActivities
from activities.control.liveness import HostHeartbeats
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.networks import (
    FloatingIpPlan,
    FloatingIpSpec,
    FloatingIpStatus,
    FloatingIpSync,
    InstanceFloatingIps,
    MoveFloatingIps,
)
from vmflow.models import Host, Instance, now
from vmflow.network_models import FloatingIp, Network, Port

ACTIVE, DOWN = "ACTIVE", "DOWN"


def target(session: Session, fip: FloatingIp) -> tuple[str | None, FloatingIpSpec | None]:
    """The host running the guest behind the floating IP's port, and the NAT it needs;
    (None, None) while it targets no placed, living instance."""
    if fip.port_id is None or fip.fixed_ip_address is None:
        return None, None
    port = session.get(Port, fip.port_id)
    if port is None or not port.device_id or port.device_owner.startswith("network:"):
        return None, None
    inst = session.get(Instance, port.device_id)
    net = session.get(Network, port.network_id)
    if inst is None or inst.deleted_at is not None or not inst.host or net is None:
        return None, None
    return inst.host, FloatingIpSpec(fip.floating_ip_address, fip.fixed_ip_address,
                                     net.segmentation_id)


class FloatingIpControlActivities(ClientActivities):
    async def _up_hosts(self) -> list[str]:
        with self.session() as s:
            names = list(s.exec(select(Host.name).order_by(col(Host.name))))
        alive = await HostHeartbeats(self.client, self.settings.host_down_after).alive(names)
        return [n for n, up in zip(names, alive, strict=True) if up]

    @activity.defn(name=ControlActs.FLOATING_IP_PLAN)
    async def floating_ip_plan(self, req: FloatingIpSync) -> FloatingIpPlan:
        """A host that is down is not asked (its worker would never pick the step up);
        the network reconciler clears what it kept once it is back."""
        with self.session() as s:
            fip = s.get(FloatingIp, req.floatingip_id)
            host, spec = target(s, fip) if fip is not None else (None, None)
            address = fip.floating_ip_address if fip is not None else req.floating_ip_address
            port_id, fixed = (fip.port_id, fip.fixed_ip_address) if fip else (None, None)
        up = await self._up_hosts()
        return FloatingIpPlan(req.floatingip_id, address, host, spec,
                              [h for h in up if h != host],
                              self.settings.schedule_to_start_timeout, exists=fip is not None,
                              port_id=port_id, fixed_ip_address=fixed)

    @activity.defn(name=ControlActs.FLOATING_IP_STATUS)
    async def floating_ip_status(self, req: FloatingIpStatus) -> None:
        with self.session() as s:
            fip = s.get(FloatingIp, req.floatingip_id)
            if fip is None or (fip.port_id, fip.fixed_ip_address) != (
                    req.port_id, req.fixed_ip_address):
                return  # released or changed since: the newer change's round decides
            if fip.status != req.status:
                fip.status, fip.updated_at = req.status, now()
                s.add(fip)
                s.commit()

    @activity.defn(name=ControlActs.INSTANCE_FLOATING_IPS)
    async def instance_floating_ips(self, req: MoveFloatingIps) -> InstanceFloatingIps:
        """The NAT of every floating IP on a port of the instance."""
        with self.session() as s:
            ports = select(Port.id).where(Port.device_id == req.instance_id)
            fips = s.exec(select(FloatingIp).where(col(FloatingIp.port_id).in_(ports))
                          .order_by(col(FloatingIp.floating_ip_address))).all()
            specs = [spec for fip in fips if (spec := target(s, fip)[1]) is not None]
        return InstanceFloatingIps(specs)

    def all(self) -> list[Callable[..., Any]]:
        return [self.floating_ip_plan, self.floating_ip_status, self.instance_floating_ips]
