"""Manila's views of a share, its export locations and its one instance, per
microversion (manila/api/views/shares.py's modifiers: the version each field appears
or goes at is in the comment next to it)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from api.openstack.microversion import Version
from api.openstack.share.base import AZ, links, stamp
from api.schemas.common import spec_true
from vmflow.models import Share, ShareType

NS = uuid.UUID("5e0b6c1e-7a39-4c1b-9a7e-3f3c0b1a9d21")  # ids derived for Manila's sub-rows


def instance_id(share: Share) -> str:
    """vmflow keeps one instance per share: its id is derived from the share's."""
    return str(uuid.uuid5(NS, f"instance:{share.id}"))


def export_location_id(share: Share, path: str) -> str:
    return str(uuid.uuid5(NS, f"export:{share.id}:{path}"))


def export_locations(share: Share, admin: bool) -> list[dict[str, Any]]:
    """Manila's export location objects (the manila CLI reads them as dicts)."""
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(share.export_locations or []):
        row: dict[str, Any] = {"id": export_location_id(share, path), "path": path,
                               "preferred": i == 0, "metadata": {}}
        if admin:
            row |= {"share_instance_id": instance_id(share), "is_admin_only": False}
        rows.append(row)
    return rows


def summary(request: Request, share: Share) -> dict[str, Any]:
    return {"id": share.id, "name": share.name or None,
            "links": links(request, "shares", share.id)}


def detail(request: Request, share: Share, share_type: ShareType | None, v: Version,
           admin: bool) -> dict[str, Any]:
    specs = share_type.extra_specs if share_type else {}
    type_name = share_type.name if share_type else None
    d: dict[str, Any] = {
        "id": share.id, "size": share.size_gb, "availability_zone": AZ,
        "created_at": stamp(share.created_at), "updated_at": stamp(share.updated_at),
        "status": share.status, "name": share.name or None,
        "description": share.description, "project_id": share.project_id,
        "snapshot_id": share.snapshot_id, "share_network_id": None,
        "share_proto": share.share_proto, "metadata": dict(share.meta or {}),
        "share_type": share.share_type_id if v >= Version(2, 6) else type_name,
        "volume_type": type_name, "links": links(request, "shares", share.id),
        "is_public": share.is_public,
    }
    if admin:  # Manila's default policy shows these to admins only
        d |= {"host": share.host, "share_server_id": None}
    if v < Version(2, 9):
        paths = list(share.export_locations or [])
        d |= {"export_location": paths[0] if paths else None, "export_locations": paths}
    if v >= Version(2, 2):
        d["snapshot_support"] = spec_true(specs.get("snapshot_support"))
    if Version(2, 4) <= v < Version(2, 31):
        d |= {"consistency_group_id": None, "source_cgsnapshot_member_id": None}
    if v >= Version(2, 5):
        d["task_state"] = None  # vmflow's share operations have no task states
    if v >= Version(2, 6):
        d["share_type_name"] = type_name
    if v >= Version(2, 10):
        rules = share.access_rules_status
        d["access_rules_status"] = "out_of_sync" if rules == "syncing" and \
            v < Version(2, 28) else rules
    if v >= Version(2, 11):
        d |= {"replication_type": None, "has_replicas": False}
    if v >= Version(2, 16):
        d["user_id"] = share.user_id
    if v >= Version(2, 24):
        d["create_share_from_snapshot_support"] = spec_true(
            specs.get("create_share_from_snapshot_support", specs.get("snapshot_support")))
    if v >= Version(2, 27):
        d["revert_to_snapshot_support"] = False
    if v >= Version(2, 31):
        d |= {"share_group_id": None, "source_share_group_snapshot_member_id": None}
    if v >= Version(2, 32):
        d["mount_snapshot_support"] = False
    if v >= Version(2, 54):
        d["progress"] = "100%" if share.status == "available" else \
            ("0%" if share.status == "creating" else None)
    if v >= Version(2, 69):
        d |= {"is_soft_deleted": False, "scheduled_to_be_deleted_at": None}
    if v >= Version(2, 80):
        d["source_backup_id"] = None
    return d


def instance(share: Share, v: Version) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": instance_id(share), "share_id": share.id, "status": share.status,
        "host": share.host, "availability_zone": AZ, "share_network_id": None,
        "share_server_id": None, "created_at": stamp(share.created_at),
    }
    if v < Version(2, 9):
        paths = list(share.export_locations or [])
        d |= {"export_location": paths[0] if paths else None, "export_locations": paths}
    if v >= Version(2, 10):
        d["access_rules_status"] = share.access_rules_status
    if v >= Version(2, 11):
        d["replica_state"] = None
    if v >= Version(2, 22):
        d["share_type_id"] = share.share_type_id
    if v >= Version(2, 30):
        d["cast_rules_to_readonly"] = False
    if v >= Version(2, 54):
        d["progress"] = "100%" if share.status == "available" else None
    if v >= Version(2, 71):
        d["updated_at"] = stamp(share.updated_at)
    return d
