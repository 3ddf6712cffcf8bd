"""Nova's os-server-groups. vmflow has no server groups (no affinity policies in its
scheduler), so the list is empty, a group is never found, and a create is refused as
Nova refuses one over quota (403): /limits shows maxServerGroups 0 to match
(docs/decisions.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.errors import Forbidden, NotFound
from api.openstack.common import OsAuthDep, OsWriterDep
from api.openstack.compute.listing import PREFIX

router = APIRouter(prefix=PREFIX)


@router.get("/os-server-groups")
def list_server_groups(auth: OsAuthDep) -> dict[str, Any]:
    return {"server_groups": []}


@router.post("/os-server-groups")
def create_server_group(body: dict[str, Any], auth: OsWriterDep) -> dict[str, Any]:
    raise Forbidden("Quota exceeded, too many server groups: vmflow has no server groups "
                    "(its scheduler has no affinity policies).")


@router.get("/os-server-groups/{group_id}")
def show_server_group(group_id: str, auth: OsAuthDep) -> dict[str, Any]:
    raise NotFound(f"Instance group {group_id} could not be found.")


@router.delete("/os-server-groups/{group_id}", status_code=204)
def delete_server_group(group_id: str, auth: OsWriterDep) -> None:
    raise NotFound(f"Instance group {group_id} could not be found.")
