"""Servers (Nova's instances): lookup, listing, creating, action history.

The logic behind api/routers/servers.py: finding a server the caller may see, listing
them, resolving what a launch names (image, flavor, keypair), the new server's row and
its create operation, and its action history."""

from __future__ import annotations

from sqlmodel import Session, col, delete, select
from temporalio.client import Client

from api.auth import AuthContext, scoped
from api.errors import BadRequest, Forbidden, NotFound
from api.schemas.common import utc
from api.schemas.servers import ActionPublic, ServerCreate, ServerPublic
from api.services import flavors, keypairs, server_nics
from api.services.images import visible_images
from api.services.operations import start_instance_operation
from vmflow import compute_quotas, states
from vmflow.models import Flavor, Image, Instance, Operation, User
from vmflow.network_models import InstanceNic
from vmflow.settings import get_settings
from vmflow.share_quotas import QuotaExceeded


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


def new_instance(session: Session, auth: AuthContext, body: ServerCreate) -> Instance:
    """The row of a new server (not added), after resolving everything it names:
    bad input creates nothing."""
    image = resolve_image(session, auth, body.image)
    flavor = flavors.resolve_flavor(session, auth, body.flavor)
    if body.key_name is not None and keypairs.find(session, auth, body.key_name) is None:
        raise BadRequest(f"keypair {body.key_name!r} not found", type="KeypairNotFound")
    create = states.TRANSITIONS["create"]
    return Instance(
        name=body.name, project_id=auth.project_id, user_id=auth.user_id,
        image_id=image.id, flavor_id=flavor.id, vm_state=states.VmState.BUILDING,
        task_state=create.task_state, key_name=body.key_name, user_data=body.user_data,
        meta=body.metadata,
    )


def listed(session: Session, auth: AuthContext) -> list[Instance]:
    """The live servers of the caller's project (admin: every project's), oldest first."""
    stmt = (scoped(select(Instance), Instance.project_id, auth)
            .where(Instance.vm_state != states.VmState.DELETED)
            .where(col(Instance.deleted_at).is_(None))
            .order_by(col(Instance.created_at)))
    return list(session.exec(stmt))


async def create(client: Client, session: Session, auth: AuthContext, body: ServerCreate,
                 idempotency_key: str | None) -> tuple[Instance, Operation]:
    """A new server, the NICs it asks for (api/services/server_nics.py) and its create
    operation (api.services.operations' start_instance_operation: on failure no row of
    it is left)."""
    inst = new_instance(session, auth, body)
    groups = None if body.security_groups is None else [
        g.model_dump() for g in body.security_groups]
    # before the server's row is added: a first use commits the auto network or group
    nics = server_nics.plan(session, auth, body.networks, groups,
                            get_settings().auto_network_pool)
    flavor = session.get(Flavor, inst.flavor_id)
    assert flavor is not None  # new_instance resolved it
    try:  # no await from here to the commit: check() holds the project row until it
        compute_quotas.check(session, auth.project_id, get_settings(), instances=1,
                             cores=flavor.vcpus, ram=flavor.ram_mb)
    except QuotaExceeded as e:  # Nova answers 403
        raise Forbidden(e.message, type=e.type) from None
    session.add(inst)
    session.flush()
    for nic in nics:
        nic.instance_id = inst.id
        session.add(nic)
    try:
        op = await start_instance_operation(client, session, inst, "create", auth,
                                            idempotency_key)
    except BaseException:
        session.rollback()
        session.exec(delete(InstanceNic).where(col(InstanceNic.instance_id) == inst.id))
        session.commit()
        raise
    return inst, op


def view(session: Session, inst: Instance) -> ServerPublic:
    return ServerPublic.of(inst, server_nics.addresses(session, [inst.id])[inst.id])


def views(session: Session, insts: list[Instance]) -> list[ServerPublic]:
    found = server_nics.addresses(session, [i.id for i in insts])
    return [ServerPublic.of(i, found[i.id]) for i in insts]


def action_history(session: Session, inst: Instance) -> list[ActionPublic]:
    ops = session.exec(
        select(Operation)
        .where(Operation.resource_type == "instance", Operation.resource_id == inst.id)
        .order_by(col(Operation.started_at))
    ).all()
    names = {u.id: u.name for u in session.exec(
        select(User).where(col(User.id).in_({o.user_id for o in ops})))}
    return [
        ActionPublic(action=o.action, request_id=o.request_id, user_id=o.user_id,
                     user=names.get(o.user_id), start=utc(o.started_at),
                     finish=utc(o.finished_at), result=o.status, fault=o.last_error,
                     workflow_id=o.workflow_id, operation_id=o.id)
        for o in ops
    ]
