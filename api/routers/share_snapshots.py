"""Share snapshots (Manila): read-only point-in-time copies of a share. Creating and
deleting one runs on the share's workflow id share-<share_id>, so it waits for no
other operation on the share: it is refused (409) while one runs."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.auth import scoped
from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.errors import BadRequest, Conflict, NotFound
from api.schemas.common import OperationAccepted, OperationBrief, spec_true
from api.schemas.share_snapshots import (
    SnapshotAccepted,
    SnapshotCreate,
    SnapshotList,
    SnapshotPublic,
)
from api.services.operations import find_idempotent, idempotency_guard
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
from vmflow.models import Share, ShareSnapshot, ShareType, now
from vmflow.operations import Claim
from vmflow.settings import get_settings

router = APIRouter(prefix="/v1/share-snapshots", tags=["share snapshots"])

# Manila: a snapshot may be deleted from these statuses
DELETABLE = frozenset({"available", "error", "error_deleting"})


@router.post("", status_code=202, response_model=SnapshotAccepted)
async def create_snapshot(body: SnapshotCreate, session: SessionDep, auth: WriterDep,
                          client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> SnapshotAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share_snapshot", "create")
        if earlier is not None:
            snap = session.get(ShareSnapshot, earlier.resource_id)
            if snap is None:
                raise NotFound(f"share snapshot {earlier.resource_id} not found")
            return SnapshotAccepted(snapshot=SnapshotPublic.of(snap),
                                    operation=OperationBrief.of(earlier))
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
        op = await start_share_operation(
            client, session, share, "snapshot_create", CREATE_SHARE_SNAPSHOT, auth,
            idempotency_key, lambda op_id: ShareSnapshotOp(snap.id, share.id, op_id, host),
            new_rows=(snap,), resource_type="share_snapshot",
            resource_id=snap.id)
        return SnapshotAccepted(snapshot=SnapshotPublic.of(snap),
                                operation=OperationBrief.of(op))


@router.get("", response_model=SnapshotList)
def list_snapshots(session: SessionDep, auth: AuthDep) -> SnapshotList:
    stmt = scoped(select(ShareSnapshot), ShareSnapshot.project_id, auth).order_by(
        col(ShareSnapshot.created_at))
    return SnapshotList(snapshots=[SnapshotPublic.of(s) for s in session.exec(stmt)])


@router.get("/{snapshot_id}", response_model=SnapshotPublic)
def show_snapshot(snapshot_id: str, session: SessionDep, auth: AuthDep) -> SnapshotPublic:
    return SnapshotPublic.of(get_snapshot(session, auth, snapshot_id))


@router.delete("/{snapshot_id}", status_code=202, response_model=OperationAccepted)
async def delete_snapshot(snapshot_id: str, session: SessionDep, auth: WriterDep,
                          client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share_snapshot", "delete",
                                  snapshot_id)
        if earlier is not None:
            return OperationAccepted(operation=OperationBrief.of(earlier))
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
        op = await start_share_operation(
            client, session, share, "snapshot_delete", DELETE_SHARE_SNAPSHOT, auth,
            idempotency_key, lambda op_id: ShareSnapshotOp(snap.id, share.id, op_id, host),
            claim=Claim(snap, "status", "deleting", expect=DELETABLE),
            resource_type="share_snapshot", resource_id=snap.id)
        return OperationAccepted(operation=OperationBrief.of(op))
