"""Nova's GET /limits: the project's absolute limits and usage in Nova's keys, from
vmflow's compute quotas (api/services/quotas.py). Per microversion: the network keys
(security groups, floating IPs) until 2.35, maxImageMeta until 2.38, the personality
keys until 2.56. What vmflow does not limit is -1; what it does not have (personality
files, server groups) is 0. No rate limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlmodel import select

from api.deps import SessionDep
from api.errors import Forbidden
from api.openstack.common import OsAuthDep
from api.openstack.compute.listing import PREFIX
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.servers import MAX_METADATA_ITEMS
from api.services.quotas import quota_set, visible_project
from vmflow.network_models import SecurityGroup

router = APIRouter(prefix=PREFIX)

MAX_IMAGE_PROPERTIES = 128  # api/services/images.update's limit
NETWORK_KEYS_UNTIL = Version(2, 35)
IMAGE_META_UNTIL = Version(2, 38)
PERSONALITY_UNTIL = Version(2, 56)


@router.get("/limits")
def show_limits(request: Request, session: SessionDep, auth: OsAuthDep,
                v: MicroversionDep) -> dict[str, Any]:
    """An admin may ask for another project's (tenant_id), as Nova."""
    project_id = request.query_params.get("tenant_id") or auth.project_id
    if project_id != auth.project_id and not auth.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:limits:other_project to be "
                        "performed.")
    q = quota_set(session, visible_project(session, auth, project_id).id).quota_set
    absolute: dict[str, int] = {
        "maxTotalInstances": q.instances.limit, "totalInstancesUsed": q.instances.in_use,
        "maxTotalCores": q.cores.limit, "totalCoresUsed": q.cores.in_use,
        "maxTotalRAMSize": q.ram.limit, "totalRAMUsed": q.ram.in_use,
        "maxServerMeta": MAX_METADATA_ITEMS, "maxTotalKeypairs": -1,
        "maxServerGroups": 0, "maxServerGroupMembers": 0, "totalServerGroupsUsed": 0}
    if v <= NETWORK_KEYS_UNTIL:
        groups = session.exec(select(func.count()).select_from(SecurityGroup).where(
            SecurityGroup.project_id == project_id)).one()
        absolute |= {"maxSecurityGroups": -1, "maxSecurityGroupRules": -1,
                     "totalSecurityGroupsUsed": int(groups),
                     "maxTotalFloatingIps": q.floating_ips.limit,
                     "totalFloatingIpsUsed": q.floating_ips.in_use}
    if v <= IMAGE_META_UNTIL:
        absolute["maxImageMeta"] = MAX_IMAGE_PROPERTIES
    if v <= PERSONALITY_UNTIL:
        absolute |= {"maxPersonality": 0, "maxPersonalitySize": 0}
    return {"limits": {"absolute": absolute, "rate": []}}
