"""Servers (Nova's instances): create, list, show, delete, action history."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session, col, select

from api.auth import AuthContext, scoped
from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.errors import BadRequest, NotFound
from api.routers.images import visible_images
from api.schemas.common import OperationAccepted, OperationBrief, utc
from api.schemas.servers import (
    ActionList,
    ActionPublic,
    ServerAccepted,
    ServerCreate,
    ServerList,
    ServerPublic,
)
from api.services import flavors
from api.services.guards import check_allowed
from api.services.operations import (
    find_idempotent,
    idempotency_guard,
    start_instance_operation,
)
from api.services.preempt import cancel_and_wait
from vmflow import states
from vmflow.models import Image, Instance, Keypair, Operation, User

router = APIRouter(prefix="/v1/servers", tags=["servers"])


def get_instance(session: Session, auth: AuthContext, server_id: str) -> Instance:
    """A live instance the caller may see, else 404."""
    inst = session.get(Instance, server_id)
    if (inst is None or inst.vm_state == states.VmState.DELETED or inst.deleted_at is not None
            or not auth.can_see(inst.project_id)):
        raise NotFound(f"server {server_id} not found")
    return inst


def resolve_image(session: Session, auth: AuthContext, ref: str) -> Image:
    """An active image visible to the caller, by id or by a name only one image has."""
    image = session.exec(visible_images(auth).where(Image.id == ref)).first()
    if image is None:
        named = list(session.exec(visible_images(auth).where(Image.name == ref)).all())
        active = [i for i in named if i.status == "active"]
        if len(active) > 1:
            raise BadRequest(
                f"{len(active)} images are named {ref!r}; use the image id "
                f"({', '.join(i.id for i in active)})", type="AmbiguousName")
        image = active[0] if active else (named[0] if named else None)
    if image is None:
        raise BadRequest(f"image {ref!r} not found", type="ImageNotFound")
    if image.status != "active":
        raise BadRequest(f"image {ref!r} is {image.status}, not active", type="ImageNotActive")
    return image


def find_keypair(session: Session, auth: AuthContext, name: str) -> Keypair | None:
    """Keypairs belong to the user (Nova), whichever project the token is for."""
    return session.exec(select(Keypair).where(Keypair.user_id == auth.user_id,
                                              Keypair.name == name)).first()


@router.post("", status_code=202, response_model=ServerAccepted)
async def create_server(body: ServerCreate, session: SessionDep, auth: WriterDep,
                        client: TemporalDep,
                        idempotency_key: IdempotencyKey = None) -> ServerAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "instance", "create")
        if earlier is not None:
            inst = session.get(Instance, earlier.resource_id)
            if inst is None:
                raise NotFound(f"server {earlier.resource_id} not found")
            return ServerAccepted(server=ServerPublic.of(inst),
                                  operation=OperationBrief.of(earlier))
        # resolve everything before writing anything: bad input creates nothing
        image = resolve_image(session, auth, body.image)
        flavor = flavors.resolve_flavor(session, auth, body.flavor)
        if body.key_name is not None and find_keypair(session, auth, body.key_name) is None:
            raise BadRequest(f"keypair {body.key_name!r} not found", type="KeypairNotFound")
        create = states.TRANSITIONS["create"]
        inst = Instance(
            name=body.name, project_id=auth.project_id, user_id=auth.user_id,
            image_id=image.id, flavor_id=flavor.id, vm_state=states.VmState.BUILDING,
            task_state=create.task_state, key_name=body.key_name, user_data=body.user_data,
            meta=body.metadata,
        )
        session.add(inst)
        op = await start_instance_operation(client, session, inst, "create", auth,
                                            idempotency_key)
        return ServerAccepted(server=ServerPublic.of(inst), operation=OperationBrief.of(op))


@router.get("", response_model=ServerList)
def list_servers(session: SessionDep, auth: AuthDep) -> ServerList:
    stmt = (scoped(select(Instance), Instance.project_id, auth)
            .where(Instance.vm_state != states.VmState.DELETED)
            .where(col(Instance.deleted_at).is_(None))
            .order_by(col(Instance.created_at)))
    return ServerList(servers=[ServerPublic.of(i) for i in session.exec(stmt)])


@router.get("/{server_id}", response_model=ServerPublic)
def show_server(server_id: str, session: SessionDep, auth: AuthDep) -> ServerPublic:
    return ServerPublic.of(get_instance(session, auth, server_id))


@router.delete("/{server_id}", status_code=202, response_model=OperationAccepted)
async def delete_server(server_id: str, session: SessionDep, auth: WriterDep,
                        client: TemporalDep,
                        idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    """Cancel a running operation, wait for its compensation, then delete."""
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "instance", "delete",
                                  server_id)
        if earlier is not None:  # the instance may be gone by now: replay anyway
            return OperationAccepted(operation=OperationBrief.of(earlier))
        inst = get_instance(session, auth, server_id)
        check_allowed("delete", inst, auth)  # lock (non-admins) and state: 409
        await cancel_and_wait(client, session, inst)
        op = await start_instance_operation(client, session, inst, "delete", auth,
                                            idempotency_key)
        return OperationAccepted(operation=OperationBrief.of(op))


@router.get("/{server_id}/actions", response_model=ActionList)
def list_actions(server_id: str, session: SessionDep, auth: AuthDep) -> ActionList:
    inst = get_instance(session, auth, server_id)
    ops = session.exec(
        select(Operation)
        .where(Operation.resource_type == "instance", Operation.resource_id == inst.id)
        .order_by(col(Operation.started_at))
    ).all()
    names = {u.id: u.name for u in session.exec(
        select(User).where(col(User.id).in_({o.user_id for o in ops})))}
    return ActionList(actions=[
        ActionPublic(action=o.action, request_id=o.request_id, user_id=o.user_id,
                     user=names.get(o.user_id), start=utc(o.started_at),
                     finish=utc(o.finished_at), result=o.status, fault=o.last_error,
                     workflow_id=o.workflow_id, operation_id=o.id)
        for o in ops
    ])
