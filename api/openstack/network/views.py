"""Neutron's resource bodies, made from the views api/services returns for /v1 (the
same fields, Neutron's names) plus the attributes Neutron always has whose value is
fixed in vmflow: one IPv4 subnet, port security always on (nwfilter), no host routes,
no routers, normal vNICs. Attributes of extensions vmflow does not list in
/v2.0/extensions (tags, revision numbers, descriptions of networks, subnets and
ports, QoS, DNS) are absent, as Neutron leaves them out without the extension."""

from __future__ import annotations

from typing import Any

from api.auth import AuthContext
from api.openstack.network.common import stamp
from api.schemas.floating_ips import FloatingIpPublic
from api.schemas.networks import NetworkPublic, SubnetPublic
from api.schemas.ports import PortPublic
from api.schemas.security_groups import SecurityGroupPublic, SecurityGroupRulePublic
from vmflow.network_models import FloatingIp, SecurityGroupRule, Subnet


def network(n: NetworkPublic) -> dict[str, Any]:
    body = n.model_dump(by_alias=True, exclude_none=True)  # provider:* for admins only
    body.update(created_at=stamp(n.created_at), updated_at=stamp(n.updated_at),
                port_security_enabled=True)
    return body


def subnet(s: Subnet | SubnetPublic) -> dict[str, Any]:
    view = s if isinstance(s, SubnetPublic) else SubnetPublic.of(s)
    body = view.model_dump()
    body.update(created_at=stamp(view.created_at), updated_at=stamp(view.updated_at),
                host_routes=[], ipv6_ra_mode=None, ipv6_address_mode=None,
                subnetpool_id=None, service_types=[])
    return body


def port(p: PortPublic, auth: AuthContext) -> dict[str, Any]:
    body = p.model_dump(by_alias=True)
    body.update(created_at=stamp(p.created_at), updated_at=stamp(p.updated_at),
                port_security_enabled=True, allowed_address_pairs=[],
                extra_dhcp_opts=[], **{"binding:vnic_type": "normal"})
    if not auth.is_admin:  # Neutron's policy shows the binding to admins only
        del body["binding:host_id"]
    return body


def rule(r: SecurityGroupRule | SecurityGroupRulePublic) -> dict[str, Any]:
    view = r if isinstance(r, SecurityGroupRulePublic) else SecurityGroupRulePublic.of(r)
    body = view.model_dump()
    stamped = stamp(view.created_at)
    body.update(created_at=stamped, updated_at=stamped)
    return body


def security_group(g: SecurityGroupPublic) -> dict[str, Any]:
    body = g.model_dump()
    body.update(created_at=stamp(g.created_at), updated_at=stamp(g.updated_at),
                security_group_rules=[rule(r) for r in g.security_group_rules],
                stateful=True)
    return body


def floating_ip(f: FloatingIp) -> dict[str, Any]:
    view = FloatingIpPublic.of(f)
    body = view.model_dump()
    body.update(created_at=stamp(view.created_at), updated_at=stamp(view.updated_at))
    return body


# the attributes each list may be filtered by (all its attributes, admin-only included)
NETWORK_ATTRS = ("id", "name", "project_id", "tenant_id", "admin_state_up", "shared",
                 "router:external", "status", "subnets", "mtu", "provider:network_type",
                 "provider:segmentation_id", "port_security_enabled", "created_at", "updated_at")
SUBNET_ATTRS = ("id", "name", "network_id", "project_id", "tenant_id", "ip_version", "cidr",
                "gateway_ip", "enable_dhcp", "dns_nameservers", "subnetpool_id",
                "ipv6_ra_mode", "ipv6_address_mode", "created_at", "updated_at")
PORT_ATTRS = ("id", "name", "network_id", "project_id", "tenant_id", "mac_address",
              "admin_state_up", "status", "fixed_ips", "security_groups", "device_id",
              "device_owner", "binding:host_id", "binding:vnic_type",
              "port_security_enabled", "created_at", "updated_at")
GROUP_ATTRS = ("id", "name", "description", "project_id", "tenant_id", "stateful",
               "created_at", "updated_at")
RULE_ATTRS = ("id", "security_group_id", "project_id", "tenant_id", "direction",
              "ethertype", "protocol", "port_range_min", "port_range_max",
              "remote_ip_prefix", "remote_group_id", "description", "created_at")
FIP_ATTRS = ("id", "floating_ip_address", "floating_network_id", "port_id",
             "fixed_ip_address", "router_id", "status", "project_id", "tenant_id",
             "description", "created_at", "updated_at")
