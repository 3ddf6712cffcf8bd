"""Glance's image API v2 at /image, a facade over api/services (the same visibility
rules and the same hostile-image inspection as /v1): discovery.py (versions, info),
schemas.py (Glance's JSON schemas), images.py (+ image_list.py, image_patch.py),
image_data.py (upload, download), members.py; views in image_views.py."""

from __future__ import annotations

from fastapi import FastAPI

from api.openstack.common import keystone_error, service_app
from api.openstack.image import discovery, image_data, images, members, schemas


def create() -> FastAPI:
    app = service_app("vmflow image (Glance v2)", keystone_error)
    for module in (discovery, schemas, images, image_data, members):
        app.include_router(module.router)
    return app
