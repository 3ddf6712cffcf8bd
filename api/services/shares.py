"""What the share routers share: finding what the caller may see (404 otherwise), the
state table's 409, quota errors as 413, and starting share workflows.

A mutating share workflow holds the id share-<share_id> with conflict policy FAIL
(snapshot create/delete too), so Temporal refuses a second one and we answer 409. The
access reconcile runs as share-<id>-access and is signalled-with-start, so allow and
deny requests queue on one run instead of racing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlmodel import Session, SQLModel, col, or_, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import AuthContext, scoped
from api.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, ServiceUnavailable
from api.schemas.shares import ShareCreate, SharePublic
from api.services.operations import described_operation, http_errors
from vmflow import access_sync, share_quotas
from vmflow.bootstrap import DEFAULT_SHARE_TYPE
from vmflow.contracts.shares import ShareOp
from vmflow.db import save_given
from vmflow.models import Operation, Share, ShareSnapshot, ShareType, now
from vmflow.names import SA_OPERATION, share_workflow_id
from vmflow.operations import RPC_TIMEOUT, Claim, OperationSpec, start_operation
from vmflow.settings import get_settings
from vmflow.share_quotas import QuotaExceeded
from vmflow.share_states import SHARE_ACTIONS, ShareStatus, allowed

log = logging.getLogger(__name__)

# workflow type names, as the control worker registers them
CREATE_SHARE = "CreateShare"
DELETE_SHARE = "DeleteShare"
EXTEND_SHARE = "ExtendShare"
SHRINK_SHARE = "ShrinkShare"
CREATE_SHARE_SNAPSHOT = "CreateShareSnapshot"
DELETE_SHARE_SNAPSHOT = "DeleteShareSnapshot"


# --- finding -------------------------------------------------------------------------

def get_share(session: Session, auth: AuthContext, share_id: str) -> Share:
    share = session.get(Share, share_id)
    if share is None or not auth.can_see(share.project_id):
        raise NotFound(f"share {share_id} not found")
    return share


def get_snapshot(session: Session, auth: AuthContext, snapshot_id: str) -> ShareSnapshot:
    snap = session.get(ShareSnapshot, snapshot_id)
    if snap is None or not auth.can_see(snap.project_id):
        raise NotFound(f"share snapshot {snapshot_id} not found")
    return snap


def type_names(session: Session) -> dict[str, str]:
    return {t.id: t.name for t in session.exec(select(ShareType))}


def check_status(action: str, share: Share) -> None:
    """The state table (vmflow.share_states) as 409, Manila's InvalidShare."""
    if not allowed(action, share.status):
        ok = ", ".join(sorted(SHARE_ACTIONS[action]))
        raise Conflict(f"Invalid share: cannot {action} share {share.id} while it is "
                       f"{share.status}; allowed from: {ok}", type="InvalidShare")


def quota_error(e: QuotaExceeded) -> PayloadTooLarge:
    """Manila answers quota errors with 413."""
    return PayloadTooLarge(e.message, type=e.type)


# --- starting ------------------------------------------------------------------------

async def start_share_operation(
    client: Client, session: Session, share: Share, action: str, workflow: str,
    auth: AuthContext, idempotency_key: str | None, make_input: Callable[[str], object], *,
    claim: Claim | None = None, new_rows: Sequence[SQLModel] = (),
    resource_type: str = "share", resource_id: str | None = None,
) -> Operation:
    """Start `workflow(make_input(operation_id))` as share-<share.id> the way every
    operation starts (vmflow.operations.start_operation): the Operation row and the
    `claim` (the status the share or snapshot shows meanwhile) in one transaction.
    If it cannot start, the row and `new_rows` go and the claim is given back: 409
    when another operation holds the share, 503 when Temporal cannot be reached."""
    spec = OperationSpec(
        resource_type=resource_type, resource_id=resource_id or share.id,
        resource=f"share {share.id}", action=action, workflow=workflow,
        workflow_id=share_workflow_id(share.id), project_id=share.project_id,
        user_id=auth.user_id, make_input=make_input, idempotency_key=idempotency_key,
        claim=claim, new_rows=new_rows)
    async with http_errors(action):
        return await start_operation(client, session, spec)


async def running_action(client: Client, share_id: str) -> str | None:
    """The action of the workflow holding share-<id> if one runs, else None."""
    try:
        desc = await client.get_workflow_handle(share_workflow_id(share_id)).describe(
            rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable(f"could not ask Temporal about share {share_id}: {e}",
                                 type="TemporalUnavailable") from e
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None
    return desc.typed_search_attributes.get(SA_OPERATION) or desc.workflow_type


# --- create and delete -----------------------------------------------------------------

def view(session: Session, auth: AuthContext, share: Share) -> SharePublic:
    t = session.get(ShareType, share.share_type_id)
    return SharePublic.of(share, t.name if t else None, auth.is_admin)


def listed(session: Session, auth: AuthContext) -> list[SharePublic]:
    """The caller's project's shares (admin: every project's), oldest first."""
    stmt = scoped(select(Share), Share.project_id, auth).order_by(col(Share.created_at))
    names = type_names(session)
    return [SharePublic.of(sh, names.get(sh.share_type_id), auth.is_admin)
            for sh in session.exec(stmt)]


def resolve_type(session: Session, auth: AuthContext, ref: str | None,
                 snapshot: ShareSnapshot | None) -> ShareType:
    """By id or name; without one, the type of the snapshot's share, else "default"."""
    if ref is None and snapshot is not None:
        source = session.get(Share, snapshot.share_id)
        if source is not None and (t := session.get(ShareType, source.share_type_id)):
            return t
    ref = ref or DEFAULT_SHARE_TYPE
    stmt = select(ShareType).where(or_(ShareType.id == ref, ShareType.name == ref))
    if not auth.is_admin:
        stmt = stmt.where(col(ShareType.is_public).is_(True))
    found = list(session.exec(stmt))
    by_id = [t for t in found if t.id == ref]
    if not found:
        raise BadRequest(f"share type {ref!r} not found", type="ShareTypeNotFound")
    return (by_id or found)[0]


def resolve_snapshot(session: Session, auth: AuthContext, ref: str) -> ShareSnapshot:
    snap = session.get(ShareSnapshot, ref)
    if snap is None or not auth.can_see(snap.project_id):
        raise BadRequest(f"share snapshot {ref!r} not found", type="ShareSnapshotNotFound")
    if snap.status != "available":
        raise BadRequest(f"share snapshot {ref} is {snap.status}, not available",
                         type="InvalidShareSnapshot")
    return snap


async def create_share(client: Client, session: Session, auth: AuthContext, body: ShareCreate,
                       idempotency_key: str | None, *, description: str | None = None,
                       is_public: bool = False, metadata: dict[str, str] | None = None,
                       ) -> tuple[Share, Operation]:
    """`description`, `is_public` and `metadata`: Manila's fields (its facade sets them)."""
    # everything is checked before anything is written: a bad request creates nothing
    if body.share_proto.upper() != "NFS":
        raise BadRequest(f"share_proto {body.share_proto!r} is not supported; only NFS",
                         type="InvalidShareProto")
    snapshot = resolve_snapshot(session, auth, body.snapshot_id) if body.snapshot_id \
        else None
    size = body.size or (snapshot.size_gb if snapshot else None)
    if size is None:
        raise BadRequest("size is required (GiB, at least 1)", type="InvalidInput")
    if snapshot is not None and size < snapshot.size_gb:
        raise BadRequest(f"size {size} is smaller than the snapshot's {snapshot.size_gb}",
                         type="InvalidInput")
    share_type = resolve_type(session, auth, body.share_type, snapshot)
    s = get_settings()
    try:  # no await from here to the commit: check() holds the project row until it
        share_quotas.check(session, auth.project_id, s, shares=1, gigabytes=size)
    except share_quotas.QuotaExceeded as e:
        raise quota_error(e) from None
    share = Share(name=body.name, description=description, is_public=is_public,
                  meta=dict(metadata or {}), project_id=auth.project_id, user_id=auth.user_id,
                  share_proto="NFS", size_gb=size, share_type_id=share_type.id,
                  snapshot_id=snapshot.id if snapshot else None, host=s.storage_name,
                  status=ShareStatus.CREATING)
    session.add(share)
    host = s.storage_name
    return share, await start_share_operation(
        client, session, share, "create", CREATE_SHARE, auth, idempotency_key,
        lambda op_id: ShareOp(share.id, op_id, host, size, share.snapshot_id),
        new_rows=(share,))


def update_share(session: Session, auth: AuthContext, share_id: str, *,
                 name: str | None = None, description: str | None = None,
                 is_public: bool | None = None) -> Share:
    """Manila's share update: name, description and is_public as given (None: kept);
    a database change only, committed."""
    share = get_share(session, auth, share_id)
    save_given(session, share, name=name, description=description, is_public=is_public)
    return share


async def delete_share(client: Client, session: Session, auth: AuthContext, share_id: str,
                       idempotency_key: str | None) -> Operation:
    share = get_share(session, auth, share_id)
    check_status("delete", share)
    refuse_with_snapshots(session, share)
    return await start_deleting(client, session, share, auth, idempotency_key, force=False)


def refuse_with_snapshots(session: Session, share: Share) -> None:
    """Manila: a share with snapshots cannot be deleted, not even by force."""
    snapshots = len(session.exec(select(ShareSnapshot.id).where(
        ShareSnapshot.share_id == share.id)).all())
    if snapshots:
        raise Conflict(f"Invalid share: share {share.id} still has {snapshots} dependent "
                       "snapshots", type="InvalidShare")


async def start_deleting(client: Client, session: Session, share: Share, auth: AuthContext,
                         idempotency_key: str | None, force: bool) -> Operation:
    """DeleteShare (force for force_delete) with the share shown as deleting meanwhile."""
    share.updated_at = now()
    session.add(share)
    host = share.host or get_settings().storage_name
    return await start_share_operation(
        client, session, share, "force_delete" if force else "delete", DELETE_SHARE, auth,
        idempotency_key,
        lambda op_id: ShareOp(share.id, op_id, host, share.size_gb, force=force),
        claim=Claim(share, "status", ShareStatus.DELETING,
                    expect=None if force else SHARE_ACTIONS["delete"]))


async def terminate_running(client: Client, session: Session, share: Share,
                            reason: str) -> None:
    """force_delete: end whatever holds share-<id>, without compensation, and mark its
    Operation failed (a terminated workflow runs no more code to do it)."""
    handle = client.get_workflow_handle(share_workflow_id(share.id))
    try:
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return
        _, op = await described_operation(session, desc)
        await client.get_workflow_handle(desc.id, run_id=desc.run_id).terminate(
            reason=reason, rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:  # nothing runs, or it closed meanwhile
            return
        raise ServiceUnavailable(f"could not terminate the running operation: {e}",
                                 type="TemporalUnavailable") from e
    log.info("force_delete of share %s terminated %s", share.id, desc.workflow_type)
    if op is not None and op.status == "running":
        op.status, op.finished_at = "failed", now()
        op.last_error = "terminated by force_delete"
        session.add(op)
        session.commit()


async def signal_access_sync(client: Client, share: Share) -> None:
    """Signal-with-start the share's access reconcile: a running one gets the signal
    and picks the new rules up, otherwise one starts."""
    host = share.host or ""  # the caller has checked it is set
    try:
        await access_sync.signal_access_sync(client, share.id, share.project_id, host)
    except (RPCError, RuntimeError) as e:
        raise ServiceUnavailable(f"could not signal the access rule sync: {e}",
                                 type="TemporalUnavailable") from e
