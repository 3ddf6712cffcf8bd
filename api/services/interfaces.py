"""A server's interface attachments (Nova's os-interface): the list and one of them
(the server's ports: device_owner compute:nova, device_id the server), and the checks
before an attach or a detach workflow starts. Everything a request can get wrong is
refused here, before anything is written: an unknown or external network, a port of
another project or in use, a bad or taken fixed IP, an exhausted pool (4xx); the
workflow (workflows/instance/attach_interface.py) makes the port.

A made port's id is fixed up front (derived from the operation's id), so the 202
names the port at once and a replayed request names the same one."""

from __future__ import annotations

import dataclasses
import uuid

from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.errors import BadRequest, NotFound
from api.schemas.interfaces import (
    AttachedIp,
    AttachmentRequest,
    InterfaceAttachment,
)
from api.services.nics import resolve_nics
from api.services.operations import InputFactory
from api.services.security_groups import ensure_default_group
from api.services.server_nics import DEVICE_OWNER, check_room
from vmflow.contracts.ports import AttachInterfaceRequest, DetachInterfaceRequest
from vmflow.models import Instance, Operation
from vmflow.network_models import InstanceNic, IpAllocation, Port
from vmflow.settings import get_settings

PORT_IDS = uuid.UUID("5f0c6a52-2b4f-4c57-9d0e-6a1c1b0e7a11")  # namespace: op id -> port id


def new_port_id(operation_id: str) -> str:
    return str(uuid.uuid5(PORT_IDS, operation_id))


def server_ports(session: Session, inst: Instance) -> list[Port]:
    order = {r.port_id: r.position for r in session.exec(
        select(InstanceNic).where(InstanceNic.instance_id == inst.id))}
    ports = session.exec(select(Port).where(Port.device_id == inst.id,
                                            Port.device_owner == DEVICE_OWNER))
    return sorted(ports, key=lambda p: (order.get(p.id, len(order)), p.created_at))


def view(session: Session, port: Port) -> InterfaceAttachment:
    ips = session.exec(select(IpAllocation).where(IpAllocation.port_id == port.id)
                       .order_by(col(IpAllocation.ip_address)))
    return InterfaceAttachment(port_id=port.id, net_id=port.network_id,
                               mac_addr=port.mac_address, port_state=port.status,
                               fixed_ips=[AttachedIp(subnet_id=a.subnet_id,
                                                     ip_address=a.ip_address) for a in ips])


def attachments(session: Session, inst: Instance) -> list[InterfaceAttachment]:
    return [view(session, p) for p in server_ports(session, inst)]


def attached_port(session: Session, inst: Instance, port_id: str) -> Port:
    """The server's port, else 404 (a port of another server looks like none)."""
    port = session.get(Port, port_id)
    if port is None or port.device_id != inst.id or port.device_owner != DEVICE_OWNER:
        raise NotFound(f"port {port_id} is not attached to server {inst.id}",
                       type="PortNotFound")
    return port


def plan_attach(session: Session, auth: AuthContext, inst: Instance,
                body: AttachmentRequest) -> InputFactory:
    """The attach workflow's input, every part checked (4xx otherwise, nothing written
    but the project's `default` group on its first use, as a launch does)."""
    if (body.net_id is None) == (body.port_id is None):
        raise BadRequest("give exactly one of net_id and port_id", type="InvalidInput")
    if body.port_id is not None and body.fixed_ips:
        raise BadRequest("fixed_ips goes with net_id: a given port has its addresses",
                         type="InvalidInput")
    # the server's project's ports and networks, whoever asks (an admin, say)
    owner = dataclasses.replace(auth, project_id=inst.project_id)
    fixed_ip = body.fixed_ips[0].ip_address if body.fixed_ips else None
    entry = ({"port": body.port_id} if body.port_id is not None
             else {"uuid": body.net_id, **({"fixed_ip": fixed_ip} if fixed_ip else {})})
    (req,) = resolve_nics(session, owner, [entry], get_settings().auto_network_pool)
    check_room(session, [req])  # 400 bad fixed IP / no subnet, 409 taken or exhausted
    if req.port_id is not None:
        if session.exec(select(IpAllocation).where(
                IpAllocation.port_id == req.port_id)).first() is None:
            raise BadRequest(f"port {req.port_id} has no IPv4 address", type="InvalidInput")
        return lambda op_id: AttachInterfaceRequest(
            inst.id, op_id, network_id=req.network_id or "", port_id=req.port_id or "")
    groups = [ensure_default_group(session, inst.project_id).id]
    return lambda op_id: AttachInterfaceRequest(
        inst.id, op_id, network_id=req.network_id or "", fixed_ip=req.fixed_ip,
        security_group_ids=groups, new_port_id=new_port_id(op_id))


def accepted(session: Session, op: Operation, body: AttachmentRequest
             ) -> InterfaceAttachment:
    """What the 202 shows: the port as it is now, or, while the workflow has not made
    it yet, its id, network and the address asked for."""
    row = session.get(InstanceNic, op.id)
    port_id = (row.port_id if row is not None and row.port_id
               else body.port_id or new_port_id(op.id))
    port = session.get(Port, port_id)
    if port is not None:
        return view(session, port)
    asked = [AttachedIp(subnet_id=None, ip_address=f.ip_address) for f in body.fixed_ips or []]
    return InterfaceAttachment(port_id=port_id, net_id=body.net_id or "", mac_addr=None,
                               port_state="BUILD", fixed_ips=asked)


def detach_input(inst: Instance, port_id: str) -> InputFactory:
    return lambda op_id: DetachInterfaceRequest(inst.id, op_id, port_id)
