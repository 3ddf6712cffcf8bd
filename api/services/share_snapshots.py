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
    start_share_operation,
)
from vmflow import share_quotas
from vmflow.contracts.shares import ShareSnapshotOp
from vmflow.models import Operation, Share, ShareSnapshot, ShareType, now
from vmflow.operations import Claim
from vmflow.settings import get_settings

# Manila: a snapshot may be deleted from these statuses
DELETABLE = frozenset({"available", "error", "error_deleting"})


def listed(session: Session, auth: AuthContext) -> list[ShareSnapshot]:
    """The caller's project's share snapshots (admin: every project's), oldest first."""
    return list(session.exec(scoped(select(ShareSnapshot), ShareSnapshot.project_id, auth)
                             .order_by(col(ShareSnapshot.created_at))))


async def create(client: Client, session: Session, auth: AuthContext, body: SnapshotCreate,
                 idempotency_key: str | None) -> tuple[ShareSnapshot, Operation]:
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
                         user_id=auth.user_id, name=body.name, size_gb=share.size_gb,
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
