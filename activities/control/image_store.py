"""The image store's part of the ledger reconciler (DESIGN decision 9), run by the
control worker, which shares the store with the API (VMFLOW_HOME/images; on a
cluster both mount it): list the store, read the image rows it names, judge
(activities/control/image_store_orphans.py, pure), then apply. Every change is conditional
on what was judged: a row moves only if it has not changed since it was read, a
file goes only if it has not been written since it was listed."""

from __future__ import annotations

import asyncio
import os
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, or_, select, update
from temporalio import activity

from activities.control import image_store_orphans as rules
from activities.control.base import ClientActivities
from activities.control.ledger import aware
from activities.control.liveness import workflows_running
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.reconcile import ImageStoreReport, ImageStoreRequest
from vmflow.models import Image, now
from vmflow.names import instance_workflow_id

PART = ".part"


def canonical(name: str) -> str | None:
    try:
        return name if str(uuid.UUID(name)) == name else None
    except ValueError:
        return None


class ImageStoreReconcileActivities(ClientActivities):
    @activity.defn(name=ControlActs.RECONCILE_IMAGE_STORE)
    async def reconcile_image_store(self, req: ImageStoreRequest) -> ImageStoreReport:
        grace = self.settings.reconcile_grace if req.grace_s is None else req.grace_s
        files = await asyncio.to_thread(self._list)  # before the rows: see reconcile_plan
        facts, seen = await asyncio.to_thread(self._facts, files, grace)
        owners = sorted(rules.owners_to_ask(facts))
        running = await workflows_running(self.client, [instance_workflow_id(i) for i in owners])
        facts = replace(facts, running=frozenset(
            i for i in owners if instance_workflow_id(i) in running))
        report = await asyncio.to_thread(self._apply, rules.judge(facts), seen)
        activity.logger.info("image store reconcile: %d files removed, %d images moved, "
                             "%d reported, %d deferred", report.removed, report.repaired,
                             report.reported, report.deferred)
        return report

    def _path(self, f: rules.StoreFile) -> Path:
        store = self.settings.image_store
        return {"data": store / f.image_id, "part": store / f"{f.image_id}{PART}",
                "staged": store / "staging" / f.image_id}[f.kind]

    def _list(self) -> list[rules.StoreFile]:
        store, out, t = self.settings.image_store, [], time.time()
        for directory, kinds in ((store, ("data", "part")), (store / "staging", ("staged",))):
            if not directory.is_dir():
                continue
            for entry in os.scandir(directory):
                name, kind = entry.name, kinds[0]
                if kind == "data" and name.endswith(PART):
                    name, kind = name[:-len(PART)], "part"
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if canonical(name) and stat.S_ISREG(st.st_mode):
                    out.append(rules.StoreFile(name, kind, max(0.0, t - st.st_mtime)))
        return out

    def _facts(self, files: list[rules.StoreFile], grace_s: float
               ) -> tuple[rules.StoreFacts, dict[str, datetime]]:
        """The facts, and each row's updated_at as stored (what _apply's updates match)."""
        named = sorted({f.image_id for f in files})
        with self.session() as s:
            rows = s.exec(select(Image).where(or_(
                col(Image.id).in_(named),
                col(Image.status).in_(("queued", "saving", "active"))))).all()
        images, referenced = {}, set()
        store = self.settings.image_store.resolve()
        for i in rows:
            props = i.properties or {}
            location = Path(i.location).resolve() if i.location else None
            if i.status == "active" and location is not None and location.parent == store:
                referenced.add(location.name)
            images[i.id] = rules.ImageRow(
                i.id, i.status, aware(i.updated_at), props.get("image_type"),
                props.get("instance_uuid"), location is not None and location.is_file())
        facts = rules.StoreFacts(files, images, frozenset(), aware(now()), grace_s,
                                 frozenset(referenced))
        return facts, {i.id: i.updated_at for i in rows}

    def _apply(self, plan: rules.StorePlan, seen: dict[str, datetime]) -> ImageStoreReport:
        details: list[str] = []
        moved: set[str] = set()
        failed = 0
        with self.session() as s:
            changes: list[tuple[str, tuple[str, ...], dict[str, str], str]] = [
                (iid, ("saving",), {"status": "queued"},
                 "its upload was interrupted: back to queued")
                for iid in plan.requeue]
            changes += [(iid, ("queued", "saving"), {"status": "error", "fault": why},
                         f"in error: {why}") for iid, (_, why) in plan.fail.items()]
            for iid, expect, values, what in changes:
                done = s.exec(update(Image).where(
                    col(Image.id) == iid, col(Image.status).in_(expect),
                    col(Image.updated_at) == seen[iid]).values(**values, updated_at=now()))
                s.commit()
                if done.rowcount == 1:
                    moved.add(iid)
                    details.append(f"image {iid}: {what}")
        removed = 0
        for f in plan.remove:
            changing = f.image_id in plan.requeue or f.image_id in plan.fail
            if changing and f.image_id not in moved:
                continue  # its row moved on meanwhile: its files may be in use again
            path = self._path(f)
            try:
                if time.time() - path.lstat().st_mtime < f.age_s - 1:
                    details.append(f"kept the {f.kind} file of image {f.image_id}: "
                                   "written since it was listed")
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                failed += 1
                details.append(f"failed: {plan.why[f]}: {e}")
                continue
            removed += 1
            details.append(plan.why[f])
        details += [f"reported: {line}" for line in plan.reported]
        details += [f"deferred: {line}" for line in plan.deferred]
        return ImageStoreReport(removed, len(moved), len(plan.reported), len(plan.deferred),
                                failed, details)

    def all(self) -> list[Callable[..., Any]]:
        return [self.reconcile_image_store]
