"""Share snapshots (Manila): read-only point-in-time copies of a share. Creating and
deleting one runs on the share's workflow id share-<share_id>, so it waits for no
other operation on the share: it is refused (409) while one runs."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.share_snapshots import (
    SnapshotAccepted,
    SnapshotCreate,
    SnapshotList,
    SnapshotPublic,
)
from api.services import share_snapshots
from api.services.operations import find_idempotent, idempotency_guard, replayed_row
from api.services.shares import get_snapshot
from vmflow.models import ShareSnapshot

router = APIRouter(prefix="/v1/share-snapshots", tags=["share snapshots"])


@router.post("", status_code=202, response_model=SnapshotAccepted)
async def create_snapshot(body: SnapshotCreate, session: SessionDep, auth: WriterDep,
                          client: TemporalDep,
                          idempotency_key: IdempotencyKey = None) -> SnapshotAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share_snapshot", "create")
        if earlier is not None:
            snap = replayed_row(session, ShareSnapshot, earlier.resource_id, "share snapshot")
            return SnapshotAccepted(snapshot=SnapshotPublic.of(snap),
                                    operation=OperationBrief.of(earlier))
        snap, op = await share_snapshots.create(client, session, auth, body, idempotency_key)
        return SnapshotAccepted(snapshot=SnapshotPublic.of(snap),
                                operation=OperationBrief.of(op))


@router.get("", response_model=SnapshotList)
def list_snapshots(session: SessionDep, auth: AuthDep) -> SnapshotList:
    return SnapshotList(snapshots=[SnapshotPublic.of(s)
                                   for s in share_snapshots.listed(session, auth)])


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
        op = await share_snapshots.delete(client, session, auth, snapshot_id, idempotency_key)
        return OperationAccepted(operation=OperationBrief.of(op))
