"""createImage and createBackup on the action route: the image record (queued) and
the SnapshotInstance workflow, made by vmflow.backups.start_snapshot (the same
function a backup schedule's tick uses), after the route's usual checks (body,
visibility, the state table: a 409 creates no image).

202 with the operation and the image, `image_id` (Nova 2.45) and a Location header
naming the image. With rotation 0 the new backup is deleted by its own rotation, as
in Nova (which then omits Location); we still name it, its status says deleted.
"""

from __future__ import annotations

import logging

from fastapi import Response
from pydantic import BaseModel
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import AuthContext
from api.schemas.common import OperationBrief
from api.services.operations import http_errors
from api.services.server_actions import CreateBackupArgs, CreateImageArgs
from vmflow.backups import start_snapshot
from vmflow.models import Image, Instance, Operation
from vmflow.operations import RPC_TIMEOUT

log = logging.getLogger(__name__)

ACTIONS = frozenset({"snapshot", "backup"})


class ImageBrief(BaseModel):
    id: str
    status: str


class SnapshotAccepted(BaseModel):
    operation: OperationBrief
    image: ImageBrief
    image_id: str


def accepted(response: Response, op: Operation, image_id: str, status: str) -> SnapshotAccepted:
    response.headers["Location"] = f"/v1/images/{image_id}"
    return SnapshotAccepted(operation=OperationBrief.of(op),
                            image=ImageBrief(id=image_id, status=status), image_id=image_id)


async def accept_snapshot(client: Client, session: Session, auth: AuthContext, inst: Instance,
                          args: CreateImageArgs | CreateBackupArgs,
                          idempotency_key: str | None, response: Response) -> SnapshotAccepted:
    if isinstance(args, CreateBackupArgs):
        backup_type, rotation, metadata = args.backup_type, args.rotation, None
    else:
        backup_type, rotation, metadata = None, None, dict(args.metadata)
    async with http_errors("snapshot"):  # start_snapshot removed its rows
        started = await start_snapshot(
            client, session, inst, name=args.name, user_id=auth.user_id,
            backup_type=backup_type, rotation=rotation, metadata=metadata,
            idempotency_key=idempotency_key)
    return accepted(response, started.operation, started.image.id, started.image.status)


async def replay_snapshot(client: Client | None, session: Session, op: Operation,
                          response: Response) -> SnapshotAccepted | None:
    """A repeated Idempotency-Key: the first request's operation and image (the
    workflow's memo names it). None if Temporal cannot say."""
    if client is None or not op.run_id:
        return None
    try:
        desc = await client.get_workflow_handle(op.workflow_id, run_id=op.run_id).describe(
            rpc_timeout=RPC_TIMEOUT)
        image_id = await desc.memo_value("image_id", None)
    except RPCError as e:
        log.info("describe of %s failed: %s", op.workflow_id, e)
        return None
    image = session.get(Image, image_id) if isinstance(image_id, str) else None
    if image is None:
        return None
    return accepted(response, op, image.id, image.status)
