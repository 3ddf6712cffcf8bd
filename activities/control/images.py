"""Control activities of createImage / createBackup: the image record's life around
the host steps (queued while the disk is copied; the upload makes it saving, then
active; then its consistency is recorded; or error with the reason) and the rotation
of backups. They touch the Image table; hosts never do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, delete, select
from temporalio import activity

from activities.control.base import DbActivities
from activities.control.instances import agent_enabled
from activities.errors import permanent
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.snapshots import (
    RotateBackups,
    RotatedBackups,
    SnapshotDone,
    SnapshotFailed,
    SnapshotPlan,
    SnapshotRequest,
)
from vmflow.models import Image, ImageMember, Instance, now
from vmflow.settings import Settings

TRUE = ("yes", "true", "1")


def require_quiesce(image: Image | None) -> bool:
    props = (image.properties if image else None) or {}
    return str(props.get("os_require_quiesce", "")).lower() in TRUE


def delete_image(settings: Settings, s: Session, image: Image) -> None:
    """As DELETE /v1/images/{id}: status deleted, its data gone from the store (only
    ever files inside it), no members. Added to `s`, not committed."""
    store = settings.image_store.resolve()
    files = [store / image.id, store / f"{image.id}.part"]
    if image.location:
        files.append(Path(image.location).resolve())
    for f in files:
        if store in f.parents:
            f.unlink(missing_ok=True)
    image.status, image.location, image.updated_at = "deleted", None, now()
    s.add(image)
    s.exec(delete(ImageMember).where(col(ImageMember.image_id) == image.id))


class SnapshotImageActivities(DbActivities):
    @activity.defn(name=ControlActs.SNAPSHOT_BEGIN)
    def snapshot_begin(self, req: SnapshotRequest) -> SnapshotPlan:
        """The image is still there and queued (its upload takes it to saving, then
        active: api/routers/image_files.py); whether to freeze, from the image the
        server was built from (Nova: the instance's image_meta)."""
        with self.session() as s:
            image = s.get(Image, req.image_id)
            if image is None or image.status == "deleted":
                raise permanent(f"image {req.image_id} was deleted before the snapshot was taken",
                                Errors.NOT_FOUND)
            if image.status != "queued":
                raise permanent(f"image {req.image_id} is {image.status}, not queued",
                                Errors.INVALID_STATE)
            inst = s.get(Instance, req.instance_id)
            base = s.get(Image, inst.image_id) if inst else None
            return SnapshotPlan(quiesce=agent_enabled(base), require_quiesce=require_quiesce(base),
                                thaw_deadline_s=self.settings.snapshot_thaw_deadline)

    @activity.defn(name=ControlActs.SNAPSHOT_DONE)
    def snapshot_done(self, req: SnapshotDone) -> None:
        """Record how consistent the copy is on the image the upload made active (with
        its location, size and checksum); an image without its data is an error."""
        with self.session() as s:
            image = s.get(Image, req.image_id)
            if image is None or image.status == "deleted":
                raise permanent(f"image {req.image_id} was deleted while its snapshot was made",
                                Errors.NOT_FOUND)
            if image.status != "active" or not (image.location and image.checksum
                                                and image.size):
                raise permanent(f"the data of image {req.image_id} never reached the image store",
                                Errors.IMAGE_INVALID)
            props = dict(image.properties or {})  # a new dict: the JSON column sees a change
            props.update(consistency=req.consistency, snapshot_source=req.source)
            image.properties, image.status, image.fault = props, "active", None
            image.updated_at = now()
            s.add(image)
            s.commit()

    @activity.defn(name=ControlActs.SNAPSHOT_FAILED)
    def snapshot_failed(self, req: SnapshotFailed) -> None:
        """Error with the reason: never a silent delete, never stuck in saving. An image
        that became active (the failure came after it) or was deleted stays so."""
        with self.session() as s:
            image = s.get(Image, req.image_id)
            if image is None or image.status in ("active", "deleted"):
                return
            image.status, image.fault, image.updated_at = "error", req.reason, now()
            s.add(image)
            s.commit()

    @activity.defn(name=ControlActs.ROTATE_BACKUPS)
    def rotate_backups(self, req: RotateBackups) -> RotatedBackups:
        """Nova's _rotate_backups: of this instance's active backups of this type, keep
        the newest `rotation` and delete the rest (rotation 0 deletes them all, the one
        just made too). Backups in error are not counted and stay, as evidence."""
        deleted = []
        with self.session() as s:
            rows = s.exec(select(Image).where(Image.status == "active")
                          .order_by(col(Image.created_at).desc(), col(Image.id))).all()
            backups = [i for i in rows if (i.properties or {}).get("image_type") == "backup"
                       and i.properties.get("instance_uuid") == req.instance_id
                       and i.properties.get("backup_type") == req.backup_type]
            for image in reversed(backups[req.rotation:]):  # oldest first
                if str((image.properties or {}).get("protected", "")).lower() in TRUE:
                    continue  # as Glance: a protected image is never deleted
                self._delete(s, image)
                deleted.append(image.id)
            s.commit()
        for image_id in deleted:
            activity.logger.info("backup rotation of %s (%s, keep %d): deleted image %s",
                                 req.instance_id, req.backup_type, req.rotation, image_id)
        return RotatedBackups(deleted)

    def _delete(self, s: Session, image: Image) -> None:
        delete_image(self.settings, s, image)

    def all(self) -> list[Callable[..., Any]]:
        return [self.snapshot_begin, self.snapshot_done, self.snapshot_failed,
                self.rotate_backups]
