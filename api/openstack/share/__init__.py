"""Manila's shared file systems API v2 at /share, microversions 2.0 to MAX.

Every resource is served under /share/v2/{project_id}/... and, as Manila does since
2.60, under /share/v2/... without the project id (base.project_in_url: a project id
that is not the token's is a malformed URL, 400). The routes are split by resource;
each is a thin facade over api/services."""

from __future__ import annotations

from fastapi import FastAPI

from api.openstack.common import nova_fault, service_app
from api.openstack.share import (
    access_rules,
    misc,
    share_actions,
    shares,
    snapshots,
    types,
    versions,
)
from api.openstack.share.base import MICROVERSIONS

__all__ = ["MICROVERSIONS", "create"]
RESOURCES = (shares.api, share_actions.api, access_rules.api, snapshots.api, types.api,
             misc.api)


def create() -> FastAPI:
    app = service_app("vmflow shared file systems (Manila v2)", nova_fault,
                      before_request_id=lambda app: MICROVERSIONS.install(app, nova_fault))
    app.include_router(versions.api)
    for prefix in ("/v2", "/v2/{project_id}"):
        for resource in RESOURCES:
            app.include_router(resource, prefix=prefix)
    return app
