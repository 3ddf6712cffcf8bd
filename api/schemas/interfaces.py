"""Interface attachments (Nova's os-interface): the request and what is shown."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import OperationBrief, Ref, Request


class FixedIp(Request):
    ip_address: Ref


class AttachmentRequest(Request):
    """One of net_id (a new port there, fixed_ips optional) or port_id (an unused port
    of the project)."""

    net_id: Ref | None = None
    port_id: Ref | None = None
    fixed_ips: list[FixedIp] | None = Field(None, max_length=1)


class AttachmentCreate(Request):
    interfaceAttachment: AttachmentRequest  # noqa: N815 (Nova's name)


class AttachedIp(BaseModel):
    subnet_id: str | None
    ip_address: str


class InterfaceAttachment(BaseModel):
    port_id: str
    net_id: str
    mac_addr: str | None  # None: the port is still being made
    port_state: str
    fixed_ips: list[AttachedIp]


class AttachmentOne(BaseModel):
    interfaceAttachment: InterfaceAttachment  # noqa: N815


class AttachmentList(BaseModel):
    interfaceAttachments: list[InterfaceAttachment]  # noqa: N815


class AttachmentAccepted(BaseModel):
    interfaceAttachment: InterfaceAttachment  # noqa: N815
    operation: OperationBrief
