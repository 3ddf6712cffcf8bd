"""Storage activities: run by the storage worker on `storage.<host>` (one per
vmflow.contracts.shares.StorageActs name). The btrfs pool (activities.storage.share_pool)
holds the shares; an exporter (activities.storage.ganesha.GaneshaExports) serves them.

Each one ensures a state, so a repeat after a crash at any point converges: a share
that exists is kept and re-limited, an export is rewritten whole from the desired
rule list, and whatever is already gone counts as removed.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import permanent
from activities.heartbeat import heartbeating
from activities.storage.share_pool import INVALID, SharePool
from vmflow import storage_netns
from vmflow.contracts.errors import Errors
from vmflow.contracts.reconcile import HostRef, StorageResources, StoredExport
from vmflow.contracts.shares import (
    AccessApplied,
    ApplyAccess,
    ShareExported,
    ShareResize,
    ShareSpec,
    SnapshotSpec,
    StorageActs,
)
from vmflow.settings import Settings

LEVELS = ("rw", "ro")
# why a rule of each type cannot be enforced by this backend
UNENFORCEABLE = {
    "user": "nfs-ganesha (FSAL VFS) enforces only ip rules; user access needs a backend "
            "with per-user authentication (e.g. Kerberos or CephFS)",
    "cert": "nfs-ganesha (FSAL VFS) enforces only ip rules; cert access needs a backend "
            "with TLS client certificates",
}


class Exporter(Protocol):
    """What the storage activities need from an NFS server (activities.storage.ganesha)."""

    def ensure_export(self, share_id: str, path: Path,
                      clients: list[tuple[str, str]]) -> None: ...

    def remove_export(self, share_id: str) -> None: ...

    def export_location(self, share_id: str, path: Path) -> str: ...

    def export_files(self) -> dict[str, tuple[int, float]]: ...


def ip_client(access_to: str) -> str:
    """The client as the exporter wants it: an address or a network without host
    bits, as the ipaddress module prints it; ValueError for anything else."""
    net = ipaddress.ip_network(access_to, strict=True)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


class StorageActivities:
    def __init__(self, settings: Settings, exporter: Exporter) -> None:
        self.settings = settings
        self.pool = SharePool(settings)
        self.exporter = exporter

    @activity.defn(name=StorageActs.CREATE_SHARE)
    @heartbeating
    def create_share(self, spec: ShareSpec) -> ShareExported:
        """The share in the pool (empty or from a snapshot) and exported with no
        access: rules come later, through APPLY_ACCESS."""
        path = self.pool.create(spec.share_id, spec.size_gb, spec.snapshot_id)
        self._export(spec.share_id, path, [])
        return ShareExported([self.exporter.export_location(spec.share_id, path)])

    @activity.defn(name=StorageActs.DELETE_SHARE)
    @heartbeating
    def delete_share(self, spec: ShareSpec) -> None:
        """Unexported first (ganesha lets go of the mount), then out of the pool."""
        self.pool.export_path(spec.share_id)  # the id is checked before anything
        self.exporter.remove_export(spec.share_id)
        self.pool.delete(spec.share_id)

    @activity.defn(name=StorageActs.RESIZE_SHARE)
    @heartbeating
    def resize_share(self, req: ShareResize) -> None:
        self.pool.resize(req.share_id, req.new_size_gb)

    @activity.defn(name=StorageActs.APPLY_ACCESS)
    @heartbeating
    def apply_access(self, req: ApplyAccess) -> AccessApplied:
        """The export's client list becomes exactly the ip rules asked for; rules this
        backend cannot enforce, or that are not valid, come back in `errors`."""
        clients: list[tuple[str, str]] = []
        applied: list[str] = []
        errors: dict[str, str] = {}
        for rule in req.rules:
            if rule.access_type in UNENFORCEABLE:
                errors[rule.rule_id] = UNENFORCEABLE[rule.access_type]
            elif rule.access_type != "ip":
                errors[rule.rule_id] = f"unknown access type {rule.access_type!r}"
            elif rule.access_level not in LEVELS:
                errors[rule.rule_id] = f"access level {rule.access_level!r} is not rw or ro"
            else:
                try:
                    clients.append((ip_client(rule.access_to), rule.access_level))
                    applied.append(rule.rule_id)
                except ValueError as e:
                    errors[rule.rule_id] = f"not an ip address or network: {e}"
        path = self.pool.ensure_mounted(req.share_id)
        if clients:  # guests' replies find their host (a host's port may be new)
            storage_netns.ensure_reply_routes(self.settings)
        self._export(req.share_id, path, clients)
        return AccessApplied(applied=applied, errors=errors)

    @activity.defn(name=StorageActs.CREATE_SNAPSHOT)
    @heartbeating
    def create_snapshot(self, spec: SnapshotSpec) -> None:
        self.pool.snapshot(spec.share_id, spec.snapshot_id)

    @activity.defn(name=StorageActs.DELETE_SNAPSHOT)
    @heartbeating
    def delete_snapshot(self, spec: SnapshotSpec) -> None:
        self.pool.delete_snapshot(spec.snapshot_id)

    @activity.defn(name=StorageActs.LIST_SHARES)
    @heartbeating
    def list_shares(self, ref: HostRef) -> StorageResources:
        """What this storage host holds for the ledger reconciler: the share and
        snapshot subvolumes in the pool and the export files, each with its age."""
        if ref.host != self.settings.storage_name:  # a worker on the wrong queue must not
            raise ApplicationError(  # answer for another host
                f"this worker is storage host {self.settings.storage_name}, not {ref.host}",
                type=Errors.INVALID_STATE, non_retryable=True)
        shares, snapshots = self.pool.subvolumes()
        now = time.time()
        exports = [StoredExport(sid, export_id, max(0.0, now - mtime))
                   for sid, (export_id, mtime) in sorted(self.exporter.export_files().items())]
        return StorageResources(ref.host, shares, snapshots, exports)

    def _export(self, share_id: str, path: Path, clients: list[tuple[str, str]]) -> None:
        try:
            self.exporter.ensure_export(share_id, path, clients)
        except ValueError as e:  # the exporter's own validation: retrying cannot help
            raise permanent(f"export of share {share_id} refused: {e}", INVALID) from e

    def all(self) -> list[Callable[..., Any]]:
        return [self.create_share, self.delete_share, self.resize_share, self.apply_access,
                self.create_snapshot, self.delete_snapshot, self.list_shares]
