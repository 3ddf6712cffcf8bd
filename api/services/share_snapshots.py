"""Share snapshots (Manila): listing, and create and delete on the share's workflow id.

The logic behind api/routers/share_snapshots.py: creating and deleting one runs on
the share's workflow id share-<share_id>, so it waits for no other operation on the
share: it is refused (409) while one runs."""

from __future__ import annotations

from sqlmodel import Session, col, select
from temporalio.client import Client

from api.auth import AuthContext, scoped
from api.errors import BadRequest, Conflict, NotFound
from api.schemas.common import spec_true
from api.schemas.share_snapshots import SnapshotCreate
from api.services.shares import (
    CREATE_SHARE_SNAPSHOT,
    DELETE_SHARE_SNAPSHOT,
    check_status,
    get_share,
    get_snapshot,
    quota_error,
    running_action,
    start_share_operation,
)
from vmflow import share_quotas
from vmflow.contracts.shares import ShareSnapshotOp
from vmflow.db import save_given
from vmflow.models import Operation, Share, ShareSnapshot, ShareType, now
from vmflow.operations import Claim
from vmflow.settings import get_settings

# Manila: a snapshot may be deleted from these statuses
DELETABLE = frozenset({"available", "error", "error_deleting"})
# what an admin may reset a snapshot to
SNAPSHOT_STATUSES = frozenset({"creating", "available", "deleting", "error", "error_deleting"})


def listed(session: Session, auth: AuthContext) -> list[ShareSnapshot]:
    """The caller's project's share snapshots (admin: every project's), oldest first."""
    return list(session.exec(scoped(select(ShareSnapshot), ShareSnapshot.project_id, auth)
                             .order_by(col(ShareSnapshot.created_at))))


async def create(client: Client, session: Session, auth: AuthContext, body: SnapshotCreate,
                 idempotency_key: str | None, *, description: str | None = None,
                 ) -> tuple[ShareSnapshot, Operation]:
    share = get_share(session, auth, body.share_id)
    check_status("snapshot", share)
    share_type = session.get(ShareType, share.share_type_id)
    if share_type is None or not spec_true(share_type.extra_specs.get("snapshot_support")):
        raise BadRequest(f"Snapshots cannot be created for share {share.id}: its share "
                         "type does not have snapshot_support", type="InvalidShare")
    try:  # no await until the commit
        share_quotas.check(session, share.project_id, get_settings(), snapshots=1,
                           snapshot_gigabytes=share.size_gb)
    except share_quotas.QuotaExceeded as e:
        raise quota_error(e) from None
    snap = ShareSnapshot(share_id=share.id, project_id=share.project_id,
                         user_id=auth.user_id, name=body.name, description=description,
                         size_gb=share.size_gb,
                         status="creating")
    session.add(snap)
    host = share.host or get_settings().storage_name
    return snap, await start_share_operation(
        client, session, share, "snapshot_create", CREATE_SHARE_SNAPSHOT, auth,
        idempotency_key, lambda op_id: ShareSnapshotOp(snap.id, share.id, op_id, host),
        new_rows=(snap,), resource_type="share_snapshot",
        resource_id=snap.id)


async def delete(client: Client, session: Session, auth: AuthContext, snapshot_id: str,
                 idempotency_key: str | None) -> Operation:
    snap = get_snapshot(session, auth, snapshot_id)
    if snap.status not in DELETABLE:
        raise Conflict(f"Invalid share snapshot: cannot delete snapshot {snap.id} while "
                       f"it is {snap.status}", type="InvalidShareSnapshot")
    share = session.get(Share, snap.share_id)
    if share is None:  # a snapshot keeps its share (delete refuses): not expected
        raise NotFound(f"share {snap.share_id} not found")
    snap.updated_at = now()
    session.add(snap)
    host = share.host or get_settings().storage_name
    return await start_share_operation(
        client, session, share, "snapshot_delete", DELETE_SHARE_SNAPSHOT, auth,
        idempotency_key, lambda op_id: ShareSnapshotOp(snap.id, share.id, op_id, host),
        claim=Claim(snap, "status", "deleting", expect=DELETABLE),
        resource_type="share_snapshot", resource_id=snap.id)


def update(session: Session, auth: AuthContext, snapshot_id: str, *, name: str | None = None,
           description: str | None = None) -> ShareSnapshot:
    """Manila's snapshot update: name and description as given (None: kept), committed."""
    snap = get_snapshot(session, auth, snapshot_id)
    save_given(session, snap, name=name, description=description)
    return snap


async def refuse_while_running(client: Client, snap: ShareSnapshot) -> None:
    """409 while an operation holds the snapshot's share: it would set the status again."""
    running = await running_action(client, snap.share_id)
    if running is not None:
        raise Conflict(f"operation {running} is running on share {snap.share_id}; wait for "
                       "it to finish")


async def reset_status(client: Client, session: Session, auth: AuthContext, snapshot_id: str,
                       status: str) -> None:
    """Admin (Manila's snapshot reset_status): a database change, audited as a finished
    Operation like the share's; refused while an operation runs on the share."""
    if status not in SNAPSHOT_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(sorted(SNAPSHOT_STATUSES))}",
                         type="InvalidInput")
    snap = get_snapshot(session, auth, snapshot_id)
    await refuse_while_running(client, snap)
    note = f"reset from {snap.status} to {status}"
    snap.status, snap.updated_at = status, now()
    session.add(snap)
    session.add(Operation(
        resource_type="share_snapshot", resource_id=snap.id, action="reset_status",
        status="succeeded", workflow_id="", project_id=snap.project_id, user_id=auth.user_id,
        last_error=note, finished_at=now()))
    session.commit()


async def force_delete(client: Client, session: Session, auth: AuthContext,
                       snapshot_id: str) -> Operation:
    """Admin: delete from any status once nothing runs on the share (a stuck status is
    first set to error_deleting, which delete accepts)."""
    snap = get_snapshot(session, auth, snapshot_id)
    if snap.status not in DELETABLE:
        await refuse_while_running(client, snap)
        snap.status, snap.updated_at = "error_deleting", now()
        session.add(snap)
        session.commit()
    return await delete(client, session, auth, snapshot_id, None)
