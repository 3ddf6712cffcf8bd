"""Starting a snapshot (createImage) or a backup (createBackup): the image record
(queued), the Operation row and SnapshotInstance on the instance's workflow id.

One function for every caller: the API's createImage/createBackup actions and the
control activity behind a backup schedule's tick (activities/control/instances.py). The caller
checks who may and the instance's state first; this makes the rows and starts the
workflow with conflict policy FAIL (Temporal is the one-operation-per-instance
mutex), and leaves no row behind when it cannot start it.

Errors: InstanceBusy when another workflow holds the instance; whatever the Temporal
client raises otherwise (RPCError when the server is unreachable, RuntimeError from
a client that never connected), after removing the rows it made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from vmflow.contracts.snapshots import SnapshotRequest
from vmflow.models import Image, Instance, Operation
from vmflow.names import (
    CONTROL_QUEUE,
    SA_OPERATION,
    instance_workflow_id,
    operation_attributes,
)
from vmflow.states import TRANSITIONS

log = logging.getLogger(__name__)

RPC_TIMEOUT = timedelta(seconds=5)

# a snapshot inherits its base image's properties (kernel_id, os_command_line,
# hw_qemu_guest_agent, ... so that it boots the same way), as Nova does, except these,
# which describe where an image came from rather than how to boot it
NOT_INHERITED = frozenset({
    "image_type", "instance_uuid", "base_image_ref", "backup_type", "user_id", "owner_id",
    "image_location", "image_state", "consistency", "snapshot_source", "backup_schedule_id",
    "error",
})


class InstanceBusy(Exception):
    """Another operation's workflow holds `instance-<id>`."""

    def __init__(self, instance_id: str, action: str):
        super().__init__(f"another operation ({action}) is running on instance {instance_id}")
        self.instance_id, self.action = instance_id, action


@dataclass(frozen=True)
class StartedSnapshot:
    image: Image
    operation: Operation


def image_record(session: Session, inst: Instance, *, name: str, user_id: str,
                 backup_type: str | None = None,
                 metadata: dict[str, Any] | None = None) -> Image:
    """The queued image a snapshot of `inst` will fill (not added to the session):
    private to the instance's project; properties image_type (snapshot or backup),
    instance_uuid, base_image_ref, user_id, owner_id (the project), backup_type for a
    backup, over the caller's `metadata` and the base image's boot properties."""
    base = session.get(Image, inst.image_id)
    inherited = {k: v for k, v in ((base.properties or {}) if base else {}).items()
                 if k not in NOT_INHERITED}
    props: dict[str, Any] = {
        **inherited, **(metadata or {}),
        "image_type": "backup" if backup_type else "snapshot",
        "instance_uuid": inst.id, "base_image_ref": inst.image_id, "user_id": user_id,
        "owner_id": inst.project_id,
    }
    if backup_type:
        props["backup_type"] = backup_type
    return Image(name=name, status="queued", disk_format="qcow2", container_format="bare",
                 visibility="private", owner=inst.project_id, properties=props)


def _search_attributes(inst: Instance, action: str) -> TypedSearchAttributes:
    return operation_attributes(instance_workflow_id(inst.id), inst.project_id, action)


async def holder(client: Client, instance_id: str) -> str:
    """The action of the workflow holding the instance (its search attribute)."""
    try:
        desc = await client.get_workflow_handle(instance_workflow_id(instance_id)).describe(
            rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        log.info("describe of instance %s failed: %s", instance_id, e)
        return "unknown"
    return desc.typed_search_attributes.get(SA_OPERATION) or desc.workflow_type


async def start_snapshot(
    client: Client,
    session: Session,
    inst: Instance,
    *,
    name: str,
    user_id: str,
    backup_type: str | None = None,
    rotation: int | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    memo: dict[str, Any] | None = None,
) -> StartedSnapshot:
    """createImage (no backup_type) or createBackup (backup_type and rotation): make
    the image record and the Operation row (action "snapshot" or "backup"), commit
    them, and start the state table's workflow (SnapshotInstance) on `instance-<id>`
    with a SnapshotRequest. `memo` is added to the workflow's memo (e.g. the backup
    schedule that asked)."""
    if (backup_type is None) != (rotation is None):
        raise ValueError("backup_type and rotation go together (createBackup)")
    action = "backup" if backup_type else "snapshot"
    workflow = TRANSITIONS[action].workflow
    assert workflow is not None
    image = image_record(session, inst, name=name, user_id=user_id, backup_type=backup_type,
                         metadata=metadata)
    workflow_id = instance_workflow_id(inst.id)
    op = Operation(resource_type="instance", resource_id=inst.id, action=action,
                   status="running", workflow_id=workflow_id, project_id=inst.project_id,
                   user_id=user_id, idempotency_key=idempotency_key)
    session.add(image)
    session.add(op)
    session.commit()
    try:
        handle = await client.start_workflow(
            workflow,
            SnapshotRequest(inst.id, op.id, image.id, backup_type, rotation),
            id=workflow_id,
            task_queue=CONTROL_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_search_attributes(inst, action),
            memo={**(memo or {}), "operation_id": op.id, "user_id": user_id,
                  "image_id": image.id},
            static_summary=f"{action} instance {inst.id} to image {image.id}",  # ids only
            rpc_timeout=RPC_TIMEOUT,
        )
    except Exception as e:
        session.delete(op)
        session.delete(image)
        session.commit()
        if isinstance(e, WorkflowAlreadyStartedError):
            raise InstanceBusy(inst.id, await holder(client, inst.id)) from None
        raise
    op.run_id = handle.first_execution_run_id or handle.result_run_id
    session.add(op)
    session.commit()
    return StartedSnapshot(image=image, operation=op)
