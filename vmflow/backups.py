"""Starting a snapshot (createImage) or a backup (createBackup): the image record
(queued), the Operation row and SnapshotInstance on the instance's workflow id.

One function for every caller: the API's createImage/createBackup actions and the
control activity behind a backup schedule's tick (activities/control/backup_schedules.py).
The caller checks who may and the instance's state first; this makes the image record
and starts the operation the way every operation starts
(vmflow.operations.start_operation: the Operation row with task_state image_snapshot,
conflict policy FAIL, the retry while the previous workflow closes), and leaves no
row behind when it cannot start it.

Errors: ResourceBusy when another operation holds the instance; whatever the Temporal
client raises otherwise (RPCError when the server is unreachable, RuntimeError from
a client that never connected), after removing the rows it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from temporalio.client import Client

from vmflow.contracts.shelve import SHELVE_MARKER
from vmflow.contracts.snapshots import SnapshotRequest
from vmflow.models import Image, Instance, Operation
from vmflow.operations import instance_spec, start_operation

# a snapshot inherits its base image's properties (kernel_id, os_command_line,
# hw_qemu_guest_agent, ... so that it boots the same way), as Nova does, except these,
# which describe where an image came from rather than how to boot it
NOT_INHERITED = frozenset({
    "image_type", "instance_uuid", "base_image_ref", "backup_type", "user_id", "owner_id",
    "image_location", "image_state", "consistency", "snapshot_source", "backup_schedule_id",
    "error", SHELVE_MARKER,
})


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
    image = image_record(session, inst, name=name, user_id=user_id, backup_type=backup_type,
                         metadata=metadata)
    session.add(image)
    spec = instance_spec(
        inst, action, user_id,
        lambda op_id: SnapshotRequest(inst.id, op_id, image.id, backup_type, rotation),
        idempotency_key=idempotency_key, new_rows=(image,),
        memo={**(memo or {}), "image_id": image.id},
        summary=f"{action} instance {inst.id} to image {image.id}")
    op = await start_operation(client, session, spec)
    return StartedSnapshot(image=image, operation=op)
