"""Neutron's networking API v2.0 at /networking, a thin facade over api/services'
networks, subnets, ports, security groups and floating IPs (the resources /v1 serves
under Neutron's names), with Neutron's bodies: {"network": {...}}, {"networks": [...]}
and {"NeutronError": {"type", "message", "detail"}}."""

from __future__ import annotations

from fastapi import FastAPI

from api.openstack.common import service_app
from api.openstack.network import discovery, floating_ips, networks, ports, security_groups
from api.openstack.network.common import install_typed_errors, neutron_error


def create() -> FastAPI:
    app = service_app("vmflow networking (Neutron v2.0)", neutron_error)
    install_typed_errors(app)
    for module in (discovery, networks, ports, security_groups, floating_ips):
        app.include_router(module.router)
    return app
