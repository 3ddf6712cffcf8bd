"""The OpenStack APIs (Keystone, Nova, Glance, Manila, Neutron) on vmflow's own port: each a
sub-application mounted under its catalog path, a thin facade over api/services (no
second implementation of any operation), with its service's error shape, request-id
and microversion headers. vmflow's own API stays under /v1."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.openstack import compute, identity, image, network, share

# catalog path -> the sub-application serving it
SERVICES = {
    "/identity": identity.create,
    "/compute": compute.create,
    "/image": image.create,
    "/share": share.create,
    "/networking": network.create,
}
PREFIXES = tuple(SERVICES)


class BarePrefix:
    """`GET /image` is served as `GET /image/`: catalog URLs have no trailing slash, and
    a client's discovery of one expects the versions document, not a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PREFIXES:
            scope = {**scope, "path": scope["path"] + "/",
                     "raw_path": scope.get("raw_path", scope["path"].encode()) + b"/"}
        await self.app(scope, receive, send)


def mount(app: FastAPI) -> None:
    for prefix, create in SERVICES.items():
        sub = create()
        sub.state = app.state  # one Temporal client, made by the parent's lifespan
        app.mount(prefix, sub)
    app.add_middleware(BarePrefix)
