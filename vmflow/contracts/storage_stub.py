"""The activities of the `storage.<host>` queue as workflows see them: name, input, output.

Workflows call these (workflows/share/steps.py `on_storage(host, StorageStub.create_share,
spec, ...)`); the storage worker runs the real ones in activities/storage/shares.py,
registered under the same names. tests/unit/test_activity_stubs.py keeps both sides
in step.
"""

from __future__ import annotations

from temporalio import activity

from vmflow.contracts.reconcile import HostRef, StorageResources
from vmflow.contracts.shares import (
    AccessApplied,
    ApplyAccess,
    ShareExported,
    ShareResize,
    ShareSpec,
    SnapshotSpec,
    StorageActs,
)

RUNS_ON_THE_WORKER = "declared here; a storage worker (storage.<host>) runs this activity"


class StorageStub:
    """btrfs subvolumes and ganesha exports on one storage host (queue `storage.<host>`)."""

    @activity.defn(name=StorageActs.CREATE_SHARE)
    async def create_share(self, spec: ShareSpec) -> ShareExported:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.DELETE_SHARE)
    async def delete_share(self, spec: ShareSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.RESIZE_SHARE)
    async def resize_share(self, req: ShareResize) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.APPLY_ACCESS)
    async def apply_access(self, req: ApplyAccess) -> AccessApplied:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.CREATE_SNAPSHOT)
    async def create_snapshot(self, spec: SnapshotSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.DELETE_SNAPSHOT)
    async def delete_snapshot(self, spec: SnapshotSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=StorageActs.LIST_SHARES)
    async def list_shares(self, ref: HostRef) -> StorageResources:
        raise NotImplementedError(RUNS_ON_THE_WORKER)
