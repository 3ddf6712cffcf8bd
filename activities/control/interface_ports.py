"""Interface attach/detach, the control side: one port made on a network (the same
atomic allocation as a launch's) or a given port bound to the instance, with its
InstanceNic row; and that one port released again (made: deleted, its address
freed; given: unbound). Both are safe to run again: the attach's row is keyed by its
operation id, and a release finds nothing left to do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, func, select, update
from temporalio import activity

from activities.control.base import DbActivities
from activities.control.ports import DEVICE_OWNER, PORT_IN_USE, make_port
from activities.errors import permanent
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.ports import AttachInterfaceRequest, InterfacePort
from vmflow.ip_allocation import remove_port
from vmflow.models import Instance, now
from vmflow.network_models import InstanceNic, Port
from vmflow.states import VmState


class InterfacePortActivities(DbActivities):
    @activity.defn(name=ControlActs.ATTACH_INSTANCE_PORT)
    def attach_instance_port(self, req: AttachInterfaceRequest) -> InterfacePort:
        """The port and its NIC row (id: the operation's), in one transaction."""
        with self.session() as s:
            done = s.get(InstanceNic, req.operation_id)
            if done is not None and done.port_id:
                return InterfacePort(req.instance_id, done.port_id, done.id)
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.vm_state == VmState.DELETED:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            last = s.exec(select(func.max(InstanceNic.position))
                          .where(InstanceNic.instance_id == inst.id)).one()
            if req.port_id:
                port_id, network_id = req.port_id, self._bind(s, req.port_id, inst.id)
            else:
                port = make_port(s, inst, req.network_id, req.fixed_ip, req.security_group_ids,
                                 req.new_port_id or None)
                port_id, network_id = port.id, req.network_id
            s.add(InstanceNic(id=req.operation_id, instance_id=inst.id,
                              position=0 if last is None else last + 1,
                              network_id=network_id, port_id=port_id, fixed_ip=req.fixed_ip,
                              security_group_ids=list(req.security_group_ids),
                              preserve_on_delete=bool(req.port_id)))
            s.commit()
            return InterfacePort(inst.id, port_id, req.operation_id)

    @staticmethod
    def _bind(s: Session, port_id: str, instance_id: str) -> str:
        """device_id set only while it is empty: a port taken since the API looked
        stays its taker's (PortInUse)."""
        taken = s.exec(update(Port).where(col(Port.id) == port_id)
                       .where(col(Port.device_id) == "").where(col(Port.device_owner) == "")
                       .values(device_id=instance_id, device_owner=DEVICE_OWNER,
                               updated_at=now()))
        port = s.get(Port, port_id)
        if not taken.rowcount or port is None:
            raise permanent(f"port {port_id} is in use by another device or gone", PORT_IN_USE)
        return port.network_id

    @activity.defn(name=ControlActs.RELEASE_INSTANCE_PORT)
    def release_instance_port(self, req: InterfacePort) -> None:
        """The port deleted if vmflow made it for the server (launch or attach), unbound
        (DOWN) if it was given; its NIC row gone. Found by the attach's row id when
        the attach's port id never reached the workflow."""
        with self.session() as s:
            rows = list(s.exec(select(InstanceNic).where(
                InstanceNic.instance_id == req.instance_id,
                (col(InstanceNic.id) == req.nic_row_id) if req.nic_row_id
                else (col(InstanceNic.port_id) == req.port_id))))
            port_id = req.port_id or next((r.port_id for r in rows if r.port_id), "")
            port = s.get(Port, port_id) if port_id else None
            if (port is not None and port.device_id == req.instance_id
                    and port.device_owner == DEVICE_OWNER):
                # no row: a port bound some other way is not vmflow's to delete
                if not rows or any(r.preserve_on_delete for r in rows):
                    port.device_id, port.device_owner = "", ""
                    port.status, port.binding_host_id, port.updated_at = "DOWN", "", now()
                    s.add(port)
                else:
                    remove_port(s, port)
            for r in rows:
                s.delete(r)
            s.commit()

    def all(self) -> list[Callable[..., Any]]:
        return [self.attach_instance_port, self.release_instance_port]
