"""Neutron's security groups (rules embedded) and security group rules:
/v2.0/security-groups[/{id}], /v2.0/security-group-rules[/{id}], over
api/services/security_groups.py (rule changes reach running guests through the same
SyncSecurityGroup signal /v1's routes send)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import MaybeTemporalDep, SessionDep
from api.openstack.common import OsAuthDep, OsWriterDep
from api.openstack.network import views
from api.openstack.network.common import (
    JsonBody,
    acting_as,
    listed,
    refuse,
    resource_body,
    selected,
    to_v1,
)
from api.schemas.common import Request as V1Request
from api.schemas.networks import NetName
from api.schemas.security_groups import SecurityGroupCreate, SecurityGroupRuleCreate
from api.services import security_groups as sg

router = APIRouter(prefix="/v2.0")

GROUP_FIXED = {"stateful": lambda v: v is True}  # nwfilter's rules are stateful
RULE_FIXED = {"remote_address_group_id": lambda v: v is None}
RULE_KEYS = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min",
             "port_range_max", "remote_ip_prefix", "remote_group_id", "description")


class GroupChange(V1Request):
    name: NetName | None = None
    description: NetName | None = None


@router.get("/security-groups")
def list_groups(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    """The project's `default` group is made on first use, as Neutron makes it."""
    items = [views.security_group(g) for g in sg.list_groups(session, auth)]
    return listed(request, items, "security_groups", views.GROUP_ATTRS)


@router.post("/security-groups", status_code=201)
def create_group(body: JsonBody, session: SessionDep, auth: OsWriterDep) -> dict[str, Any]:
    """With Neutron's two egress rules."""
    attrs = resource_body(body, "security_group")
    refuse(attrs, GROUP_FIXED)
    owner = acting_as(session, auth, attrs)
    v1 = to_v1(SecurityGroupCreate, attrs, ("name", "description"))
    return {"security_group": views.security_group(sg.create_group(session, owner, v1, None))}


@router.get("/security-groups/{group_id}")
def show_group(group_id: str, request: Request, session: SessionDep,
               auth: OsAuthDep) -> dict[str, Any]:
    group = sg.group_view(session, sg.get_group(session, auth, group_id))
    return {"security_group": selected(request, views.security_group(group))}


@router.put("/security-groups/{group_id}")
def update_group(group_id: str, body: JsonBody, session: SessionDep,
                 auth: OsWriterDep) -> dict[str, Any]:
    """name and description (the default group keeps its name: 409)."""
    attrs = resource_body(body, "security_group")
    sg.get_group(session, auth, group_id)  # 404 before any 400
    refuse(attrs, GROUP_FIXED)
    change = to_v1(GroupChange, attrs, ("name", "description"))
    if change.name == "":
        change = GroupChange(description=change.description)  # Neutron keeps the name
    group = sg.update_group(session, auth, group_id, change.name, change.description)
    return {"security_group": views.security_group(group)}


@router.delete("/security-groups/{group_id}", status_code=204)
async def delete_group(group_id: str, session: SessionDep, auth: OsWriterDep,
                       client: MaybeTemporalDep) -> Response:
    """409 SecurityGroupInUse while a port is in it."""
    await sg.delete_group(session, auth, client, group_id, None)
    return Response(status_code=204)


# --- rules ---------------------------------------------------------------------------

@router.get("/security-group-rules")
def list_rules(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    items = [views.rule(r) for r in sg.list_rules(session, auth)]
    return listed(request, items, "security_group_rules", views.RULE_ATTRS)


@router.post("/security-group-rules", status_code=201)
async def create_rule(body: JsonBody, session: SessionDep, auth: OsWriterDep,
                      client: MaybeTemporalDep) -> dict[str, Any]:
    """409 SecurityGroupRuleExists for a duplicate; the group's guests get it."""
    attrs = resource_body(body, "security_group_rule")
    refuse(attrs, RULE_FIXED)
    acting_as(session, auth, attrs)  # a rule is its group's project's
    v1 = to_v1(SecurityGroupRuleCreate, attrs, RULE_KEYS)
    return {"security_group_rule": views.rule(
        await sg.create_rule(session, auth, client, v1, None))}


@router.get("/security-group-rules/{rule_id}")
def show_rule(rule_id: str, request: Request, session: SessionDep,
              auth: OsAuthDep) -> dict[str, Any]:
    return {"security_group_rule": selected(request,
                                            views.rule(sg.get_rule(session, auth, rule_id)))}


@router.delete("/security-group-rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, session: SessionDep, auth: OsWriterDep,
                      client: MaybeTemporalDep) -> Response:
    await sg.delete_rule(session, auth, client, rule_id, None)
    return Response(status_code=204)
