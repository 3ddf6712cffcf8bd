"""Shares (Manila): create, list, show, delete. Actions are in share_actions.py."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session, col, or_, select
from temporalio.client import Client

from api.auth import AuthContext, scoped
from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.errors import BadRequest, Conflict, NotFound
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.shares import ShareAccepted, ShareCreate, ShareList, SharePublic
from api.services.operations import find_idempotent, idempotency_guard
from api.services.shares import (
    CREATE_SHARE,
    DELETE_SHARE,
    check_status,
    get_share,
    quota_error,
    start_share_operation,
    type_names,
)
from vmflow import share_quotas
from vmflow.bootstrap import DEFAULT_SHARE_TYPE
from vmflow.contracts.shares import ShareOp
from vmflow.models import Operation, Share, ShareSnapshot, ShareType, now
from vmflow.operations import Claim
from vmflow.settings import get_settings
from vmflow.share_states import SHARE_ACTIONS, ShareStatus

router = APIRouter(prefix="/v1/shares", tags=["shares"])


def view(session: Session, auth: AuthContext, share: Share) -> SharePublic:
    t = session.get(ShareType, share.share_type_id)
    return SharePublic.of(share, t.name if t else None, auth.is_admin)


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


@router.post("", status_code=202, response_model=ShareAccepted)
async def create_share(body: ShareCreate, session: SessionDep, auth: WriterDep,
                       client: TemporalDep,
                       idempotency_key: IdempotencyKey = None) -> ShareAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share", "create")
        if earlier is not None:
            share = session.get(Share, earlier.resource_id)
            if share is None:
                raise NotFound(f"share {earlier.resource_id} not found")
            return ShareAccepted(share=view(session, auth, share),
                                 operation=OperationBrief.of(earlier))
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
        try:  # no await from here to the commit: the quota holds for this process
            share_quotas.check(session, auth.project_id, s, shares=1, gigabytes=size)
        except share_quotas.QuotaExceeded as e:
            raise quota_error(e) from None
        share = Share(name=body.name, project_id=auth.project_id, user_id=auth.user_id,
                      share_proto="NFS", size_gb=size, share_type_id=share_type.id,
                      snapshot_id=snapshot.id if snapshot else None, host=s.storage_name,
                      status=ShareStatus.CREATING)
        session.add(share)
        host = s.storage_name
        op = await start_share_operation(
            client, session, share, "create", CREATE_SHARE, auth, idempotency_key,
            lambda op_id: ShareOp(share.id, op_id, host, size, share.snapshot_id),
            new_rows=(share,))
        return ShareAccepted(share=view(session, auth, share), operation=OperationBrief.of(op))


@router.get("", response_model=ShareList)
def list_shares(session: SessionDep, auth: AuthDep) -> ShareList:
    stmt = scoped(select(Share), Share.project_id, auth).order_by(col(Share.created_at))
    names = type_names(session)
    return ShareList(shares=[SharePublic.of(sh, names.get(sh.share_type_id), auth.is_admin)
                             for sh in session.exec(stmt)])


@router.get("/{share_id}", response_model=SharePublic)
def show_share(share_id: str, session: SessionDep, auth: AuthDep) -> SharePublic:
    return view(session, auth, get_share(session, auth, share_id))


@router.delete("/{share_id}", status_code=202, response_model=OperationAccepted)
async def delete_share(share_id: str, session: SessionDep, auth: WriterDep, client: TemporalDep,
                       idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share", "delete", share_id)
        if earlier is not None:  # the share may be gone by now: replay anyway
            return OperationAccepted(operation=OperationBrief.of(earlier))
        share = get_share(session, auth, share_id)
        check_status("delete", share)
        snapshots = len(session.exec(select(ShareSnapshot.id).where(
            ShareSnapshot.share_id == share.id)).all())
        if snapshots:
            raise Conflict(f"Invalid share: share {share.id} still has {snapshots} dependent "
                           "snapshots", type="InvalidShare")
        op = await start_deleting(client, session, share, auth, idempotency_key, force=False)
        return OperationAccepted(operation=OperationBrief.of(op))


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
