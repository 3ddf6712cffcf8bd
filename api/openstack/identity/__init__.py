"""Keystone v3 at /identity: discovery, tokens with a catalog, and the admin calls the
clients make, on vmflow's own identity tables (a Keystone token is a vmflow token)."""

from __future__ import annotations

from fastapi import FastAPI

from api.openstack.common import keystone_error, service_app
from api.openstack.identity import (
    app_credentials,
    discovery,
    projects,
    roles,
    tokens,
    users,
)


def create() -> FastAPI:
    app = service_app("vmflow identity (Keystone v3)", keystone_error)
    for module in (discovery, tokens, projects, users, roles, app_credentials):
        app.include_router(module.router)
    return app
