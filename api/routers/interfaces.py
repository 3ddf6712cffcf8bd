"""`/v1/servers/{id}/os-interface` (Nova's interface attachments): list, show, attach
(POST, 202 with the attachment and the operation), detach (DELETE, 202 with the
operation). Attach and detach are workflows on the server (AttachInterface,
DetachInterface); checks in order: the body (400/422), Idempotency-Key replay, the
server is visible (404), the lock and the state (409), the request itself (4xx)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.errors import ServiceUnavailable
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.interfaces import (
    AttachmentAccepted,
    AttachmentCreate,
    AttachmentList,
    AttachmentOne,
)
from api.services import interfaces
from api.services.guards import check_allowed
from api.services.operations import (
    find_idempotent,
    idempotency_guard,
    start_instance_operation,
)
from api.services.servers import get_instance

router = APIRouter(prefix="/v1/servers", tags=["server interfaces"])


@router.get("/{server_id}/os-interface", response_model=AttachmentList)
def list_interfaces(server_id: str, session: SessionDep, auth: AuthDep) -> AttachmentList:
    inst = get_instance(session, auth, server_id)
    return AttachmentList(interfaceAttachments=interfaces.attachments(session, inst))


@router.get("/{server_id}/os-interface/{port_id}", response_model=AttachmentOne)
def show_interface(server_id: str, port_id: str, session: SessionDep,
                   auth: AuthDep) -> AttachmentOne:
    inst = get_instance(session, auth, server_id)
    port = interfaces.attached_port(session, inst, port_id)
    return AttachmentOne(interfaceAttachment=interfaces.view(session, port))


@router.post("/{server_id}/os-interface", status_code=202, response_model=AttachmentAccepted)
async def attach_interface(server_id: str, body: AttachmentCreate, session: SessionDep,
                           auth: WriterDep, client: MaybeTemporalDep,
                           idempotency_key: IdempotencyKey = None) -> AttachmentAccepted:
    """409 PortInUse, IpAddressAlreadyAllocated, IpAddressGenerationFailure,
    ExternalNetworkAttachForbidden; 404 for a network or port the caller cannot see;
    400 for a bad fixed IP or a network without a subnet."""
    req = body.interfaceAttachment
    async with idempotency_guard(auth, idempotency_key):
        op = find_idempotent(session, auth, idempotency_key, "instance", "attach-interface",
                             server_id)
        if op is None:
            inst = get_instance(session, auth, server_id)
            check_allowed("attach-interface", inst, auth)
            make_input = interfaces.plan_attach(session, auth, inst, req)
            if client is None:
                raise ServiceUnavailable("Temporal is not reachable",
                                         type="TemporalUnavailable")
            op = await start_instance_operation(client, session, inst, "attach-interface",
                                                auth, idempotency_key, make_input)
        return AttachmentAccepted(interfaceAttachment=interfaces.accepted(session, op, req),
                                  operation=OperationBrief.of(op))


@router.delete("/{server_id}/os-interface/{port_id}", status_code=202,
               response_model=OperationAccepted)
async def detach_interface(server_id: str, port_id: str, session: SessionDep,
                           auth: WriterDep, client: MaybeTemporalDep,
                           idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    async with idempotency_guard(auth, idempotency_key):
        op = find_idempotent(session, auth, idempotency_key, "instance", "detach-interface",
                             server_id)
        if op is None:
            inst = get_instance(session, auth, server_id)
            check_allowed("detach-interface", inst, auth)  # the state first, as Nova
            interfaces.attached_port(session, inst, port_id)  # 404
            if client is None:
                raise ServiceUnavailable("Temporal is not reachable",
                                         type="TemporalUnavailable")
            op = await start_instance_operation(client, session, inst, "detach-interface",
                                                auth, idempotency_key,
                                                interfaces.detach_input(inst, port_id))
        return OperationAccepted(operation=OperationBrief.of(op))
