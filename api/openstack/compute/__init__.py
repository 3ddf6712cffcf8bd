"""Nova's compute API v2.1 at /compute, microversions 2.1 to MAX, over api/services."""

from __future__ import annotations

from fastapi import FastAPI

from api.openstack.common import nova_fault, service_app
from api.openstack.compute import (
    instance_actions,
    server_actions,
    server_metadata,
    servers,
    versions,
)
from api.openstack.microversion import Microversions, Version

MICROVERSIONS = Microversions("compute", "X-OpenStack-Nova-API-Version",
                              Version(2, 1), Version(2, 79))


def create() -> FastAPI:
    app = service_app("vmflow compute (Nova v2.1)", nova_fault, "X-Compute-Request-Id",
                      before_request_id=lambda app: MICROVERSIONS.install(app, nova_fault))
    app.include_router(versions.router)
    app.include_router(servers.router)
    app.include_router(server_actions.router)
    app.include_router(instance_actions.router)
    app.include_router(server_metadata.router)
    # flavors, keypairs, hosts, limits, migrations, server groups, image proxy
    from api.openstack.compute import (
        flavor_extras,
        flavors,
        hosts,
        image_proxy,
        keypairs,
        limits,
        migrations,
        server_groups,
    )
    app.include_router(flavors.router)
    app.include_router(flavor_extras.router)
    app.include_router(keypairs.router)
    app.include_router(hosts.router)
    app.include_router(limits.router)
    app.include_router(migrations.router)
    app.include_router(server_groups.router)
    app.include_router(image_proxy.router)
    return app
