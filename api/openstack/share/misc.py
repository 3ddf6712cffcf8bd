"""The small read-only resources: availability zones (one), replicas (none), the
share's metadata, limits and quota sets (api/services/quotas.py, vmflow.share_quotas)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.deps import SessionDep
from api.errors import BadRequest
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.share.base import AZ, router
from api.services import share_metadata
from api.services.quotas import visible_project
from api.services.shares import get_share
from vmflow import share_quotas
from vmflow.settings import get_settings

api = router()


def zones() -> dict[str, Any]:
    # vmflow records no creation time for its one zone
    return {"availability_zones": [{"id": AZ, "name": AZ, "created_at": None,
                                    "updated_at": None}]}


@api.get("/availability-zones")
def availability_zones(auth: OsAuthDep) -> dict[str, Any]:
    return zones()


@api.get("/os-availability-zone")
def os_availability_zone(auth: OsAuthDep) -> dict[str, Any]:
    return zones()


@api.get("/share-replicas")
def list_replicas(auth: OsAuthDep) -> dict[str, Any]:
    return {"share_replicas": []}  # vmflow shares have no replicas


@api.get("/share-replicas/detail")
def list_replicas_detail(auth: OsAuthDep) -> dict[str, Any]:
    return {"share_replicas": []}


# --- metadata ------------------------------------------------------------------------

class MetadataBody(Lenient):
    metadata: dict[str, Any]


class MetaBody(Lenient):
    meta: dict[str, Any] = Field(min_length=1, max_length=1)


M = "/shares/{share_id}/metadata"


@api.get(M)
def show_metadata(share_id: str, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return {"metadata": dict(get_share(session, auth, share_id).meta or {})}


@api.post(M)
def merge_metadata(share_id: str, body: MetadataBody, session: SessionDep,
                   auth: OsWriterDep) -> dict[str, Any]:
    return {"metadata": share_metadata.change(session, auth, share_id, body.metadata, True)}


@api.put(M)
def replace_metadata(share_id: str, body: MetadataBody, session: SessionDep,
                     auth: OsWriterDep) -> dict[str, Any]:
    return {"metadata": share_metadata.change(session, auth, share_id, body.metadata, False)}


@api.get(M + "/{key}")
def show_metadata_item(share_id: str, key: str, session: SessionDep,
                       auth: OsAuthDep) -> dict[str, Any]:
    return {"meta": {key: share_metadata.item(session, auth, share_id, key)}}


@api.put(M + "/{key}")
def set_metadata_item(share_id: str, key: str, body: MetaBody, session: SessionDep,
                      auth: OsWriterDep) -> dict[str, Any]:
    if key not in body.meta:
        raise BadRequest("Request body and URI mismatch", type="InvalidInput")
    share_metadata.change(session, auth, share_id, {key: body.meta[key]}, True)
    return {"meta": {key: body.meta[key]}}


@api.delete(M + "/{key}")
def delete_metadata_item(share_id: str, key: str, session: SessionDep,
                         auth: OsWriterDep) -> dict[str, Any]:
    share_metadata.delete_item(session, auth, share_id, key)
    return {}


# --- limits and quotas -----------------------------------------------------------------

ABSOLUTE = {"shares": ("maxTotalShares", "totalSharesUsed"),
            "gigabytes": ("maxTotalShareGigabytes", "totalShareGigabytesUsed"),
            "snapshots": ("maxTotalShareSnapshots", "totalShareSnapshotsUsed"),
            "snapshot_gigabytes": ("maxTotalSnapshotGigabytes", "totalSnapshotGigabytesUsed")}


@api.get("/limits")
def limits(session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    lim = share_quotas.limits(session, auth.project_id, get_settings())
    used = share_quotas.usage(session, auth.project_id)
    absolute: dict[str, int] = {"maxTotalShareNetworks": 0, "totalShareNetworksUsed": 0}
    for resource, (max_name, used_name) in ABSOLUTE.items():
        absolute |= {max_name: lim[resource], used_name: used[resource]}
    return {"limits": {"rate": [], "absolute": absolute}}


@api.get("/quota-sets/{quota_project_id}")
def show_quota_set(quota_project_id: str, session: SessionDep,
                   auth: OsAuthDep) -> dict[str, Any]:
    project = visible_project(session, auth, quota_project_id)
    lim = share_quotas.limits(session, project.id, get_settings())
    return {"quota_set": {"id": project.id, **{r: lim[r] for r in share_quotas.RESOURCES},
                          "share_networks": 0}}
