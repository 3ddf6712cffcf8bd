"""Servers (Nova's instances): lookup, listing, creating, action history.

The logic behind api/routers/servers.py: finding a server the caller may see, listing
them, resolving what a launch names (image, flavor, keypair), the new server's row and
its create operation, and its action history."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, false, or_, tuple_
from sqlalchemy.exc import DataError
from sqlmodel import Session, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar
from temporalio.client import Client

from api.auth import AuthContext
from api.errors import BadRequest, Forbidden, NotFound
from api.schemas.common import utc
from api.schemas.servers import ActionPublic, ServerCreate, ServerPublic
from api.services import flavors, keypairs, server_nics
from api.services.guards import check_allowed
from api.services.images import visible_images
from api.services.operations import start_instance_operation
from api.services.preempt import cancel_and_wait
from vmflow import compute_quotas, states
from vmflow.models import Flavor, Image, Instance, Operation, User, now
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


# the descriptive fields a server may be created with and changed later (Nova's PUT)
UPDATABLE = frozenset({"name", "description", "access_ip_v4", "access_ip_v6"})


async def create(client: Client, session: Session, auth: AuthContext, body: ServerCreate,
                 idempotency_key: str | None,
                 attrs: dict[str, str | None] | None = None) -> tuple[Instance, Operation]:
    """A new server, the NICs it asks for (api/services/server_nics.py) and its create
    operation (api.services.operations' start_instance_operation: on failure no row of
    it is left). `attrs`: UPDATABLE fields beyond the body's (the compute facade's)."""
    inst = new_instance(session, auth, body)
    for field, value in (attrs or {}).items():
        assert field in UPDATABLE, field
        setattr(inst, field, value)
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


async def delete_server(client: Client, session: Session, auth: AuthContext, inst: Instance,
                 idempotency_key: str | None) -> Operation:
    """The lock (non-admins) and the state table (409), a running operation cancelled
    and compensated first, then the delete workflow."""
    check_allowed("delete", inst, auth)
    await cancel_and_wait(client, session, inst)
    return await start_instance_operation(client, session, inst, "delete", auth,
                                          idempotency_key)


def update(session: Session, auth: AuthContext, server_id: str,
           changes: dict[str, str | None]) -> Instance:
    """Rename, describe or readdress a server (Nova's PUT /servers/{id}: a database
    change of descriptive fields only, allowed in any state and on a locked server, as
    in Nova). Readers never get here (403)."""
    inst = get_instance(session, auth, server_id)
    for field, value in changes.items():
        assert field in UPDATABLE, field
        setattr(inst, field, value)
    inst.updated_at = now()
    session.add(inst)
    session.commit()
    return inst


# --- listing: one query builder for GET /v1/servers and the compute facade's ----------

MAX_LIMIT = 1000  # Nova's CONF.api.max_limit: a bigger limit is cut to it


@dataclass(frozen=True)
class ServerQuery:
    """What a list of servers asks for, as Nova reads GET /servers; list_page turns it
    into one SQL query (filters, order and paging in the database, not in Python)."""

    project_id: str | None  # None: every project (admins only)
    limit: int = MAX_LIMIT
    marker: str | None = None  # the last id of the previous page
    name: str | None = None  # a regular expression searched in the name (Nova)
    statuses: frozenset[str] = frozenset()  # Nova's status names; any of them
    host: str | None = None  # admins only: ignored for others, as Nova ignores it
    image_id: str | None = None
    flavor_id: str | None = None
    changes_since: datetime | None = None  # with either bound: deleted servers too
    changes_before: datetime | None = None
    newest_first: bool = False  # Nova's default order; /v1 lists oldest first


def limit_of(value: str | int | None) -> int:
    """A page size: an integer >= 0, cut to MAX_LIMIT (absent: MAX_LIMIT)."""
    if value is None:
        return MAX_LIMIT
    try:
        n = int(value)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if n < 0:
        raise BadRequest("limit param must be positive")
    return min(n, MAX_LIMIT)


def time_of(key: str, value: str | None) -> datetime | None:
    """An ISO 8601 time (no zone: UTC); None when the filter is absent."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid filter field: {key}: {value!r} is not an ISO 8601 "
                         "time") from None
    return utc(t).astimezone(UTC)


def name_of(value: str) -> str:
    """A name filter: a regular expression (Nova's), checked here so a bad one is a 400."""
    try:
        with warnings.catch_warnings():  # FutureWarning on "[[" and the like: still valid
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error:
        raise BadRequest(f"Invalid filter field: name: {value!r} is not a regular "
                         "expression") from None
    return value


def statuses_of(values: list[str], auth: AuthContext) -> frozenset[str]:
    """Nova's status filter; DELETED lists deleted servers, which only admins may."""
    wanted = frozenset(v.strip().upper() for v in values)
    if "DELETED" in wanted and not auth.is_admin:
        raise Forbidden("Only administrators may list deleted instances")
    return wanted


def _status_sql() -> dict[str, ColumnElement[bool]]:
    """Each status as a condition on (vm_state, task_state), derived from
    states.status itself: a task that sets the status whatever the vm_state overrides
    it; any other task (or none) leaves the vm_state's."""
    vm_status = {v.value: states.status(v, None) for v in states.VmState}
    overriding = {t.value: states.status(states.VmState.ACTIVE, t) for t in states.TaskState
                  if len({states.status(v, t) for v in states.VmState}) == 1}
    task, vm = col(Instance.task_state), col(Instance.vm_state)
    not_overridden = or_(task.is_(None), task.not_in(list(overriding)))
    out: dict[str, ColumnElement[bool]] = {}
    for status in {*vm_status.values(), *overriding.values()}:
        tasks = [t for t, s in overriding.items() if s == status]
        vms = [v for v, s in vm_status.items() if s == status]
        out[status] = or_(task.in_(tasks), and_(not_overridden, vm.in_(vms)))
    return out


STATUS_SQL = _status_sql()


def _filtered(q: ServerQuery, auth: AuthContext) -> SelectOfScalar[Instance]:
    if q.project_id is None and not auth.is_admin:
        raise Forbidden("only admins may list every project's servers")
    stmt = select(Instance)
    if q.project_id is not None:
        stmt = stmt.where(Instance.project_id == q.project_id)
    # Nova: deleted servers show up with changes-since/-before and status=DELETED
    if q.changes_since is None and q.changes_before is None and "DELETED" not in q.statuses:
        stmt = stmt.where(Instance.vm_state != states.VmState.DELETED,
                          col(Instance.deleted_at).is_(None))
    if q.name is not None:
        stmt = stmt.where(col(Instance.name).regexp_match(q.name))
    if q.statuses:  # an unknown status matches nothing, as in Nova
        stmt = stmt.where(or_(false(), *(STATUS_SQL[s] for s in q.statuses
                                         if s in STATUS_SQL)))
    if q.host is not None and auth.is_admin:
        stmt = stmt.where(Instance.host == q.host)
    if q.image_id is not None:
        stmt = stmt.where(Instance.image_id == q.image_id)
    if q.flavor_id is not None:
        stmt = stmt.where(Instance.flavor_id == q.flavor_id)
    if q.changes_since is not None:
        stmt = stmt.where(col(Instance.updated_at) >= q.changes_since)
    if q.changes_before is not None:
        stmt = stmt.where(col(Instance.updated_at) <= q.changes_before)
    return stmt


def list_page(session: Session, auth: AuthContext,
              q: ServerQuery) -> tuple[list[Instance], bool]:
    """One page of the servers `q` selects, ordered by (created_at, id), and whether
    more follow. The marker must be a server in the listing's scope (deleted or not,
    whatever the filters): else 400, as Nova's MarkerNotFound."""
    stmt = _filtered(q, auth)
    key = tuple_(col(Instance.created_at), col(Instance.id))
    if q.marker is not None:
        m = session.get(Instance, q.marker)
        if m is None or not auth.can_see(m.project_id) or (
                q.project_id is not None and m.project_id != q.project_id):
            raise BadRequest(f"marker [{q.marker}] not found", type="MarkerNotFound")
        after = (utc(m.created_at), m.id)  # bound with the columns' own types
        stmt = stmt.where(key < after if q.newest_first else key > after)
    if q.newest_first:
        stmt = stmt.order_by(col(Instance.created_at).desc(), col(Instance.id).desc())
    else:
        stmt = stmt.order_by(col(Instance.created_at), col(Instance.id))
    try:  # one row more than the page tells whether another page follows
        rows = list(session.exec(stmt.limit(q.limit + 1)))
    except DataError:  # PostgreSQL's regular expressions are not Python's
        session.rollback()
        raise BadRequest(f"Invalid filter field: name: {q.name!r}") from None
    return rows[:q.limit], len(rows) > q.limit


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
