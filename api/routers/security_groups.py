"""Security groups and security group rules (Neutron v2.0 names): create, list, show,
delete. The logic is in api/services/security_groups.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.schemas.security_groups import (
    SecurityGroupCreate,
    SecurityGroupList,
    SecurityGroupPublic,
    SecurityGroupRuleCreate,
    SecurityGroupRuleList,
    SecurityGroupRulePublic,
)
from api.services import security_groups as sg

router = APIRouter(tags=["security groups"])
GROUPS, RULES = "/v1/security-groups", "/v1/security-group-rules"


@router.post(GROUPS, status_code=201, response_model=SecurityGroupPublic)
def create_group(body: SecurityGroupCreate, session: SessionDep, auth: WriterDep,
                 idempotency_key: IdempotencyKey = None) -> SecurityGroupPublic:
    return sg.create_group(session, auth, body, idempotency_key)


@router.get(GROUPS, response_model=SecurityGroupList)
def list_groups(session: SessionDep, auth: AuthDep,
                name: Annotated[str | None, Query(max_length=255)] = None) -> SecurityGroupList:
    """The project's `default` group is made on first use."""
    return SecurityGroupList(security_groups=sg.list_groups(session, auth, name))


@router.get(GROUPS + "/{group_id}", response_model=SecurityGroupPublic)
def show_group(group_id: str, session: SessionDep, auth: AuthDep) -> SecurityGroupPublic:
    return sg.group_view(session, sg.get_group(session, auth, group_id))


@router.delete(GROUPS + "/{group_id}", status_code=204)
async def delete_group(group_id: str, session: SessionDep, auth: WriterDep,
                       client: MaybeTemporalDep, idempotency_key: IdempotencyKey = None
                       ) -> Response:
    """409 SecurityGroupInUse while a port is in it."""
    await sg.delete_group(session, auth, client, group_id, idempotency_key)
    return Response(status_code=204)


@router.post(RULES, status_code=201, response_model=SecurityGroupRulePublic)
async def create_rule(body: SecurityGroupRuleCreate, session: SessionDep, auth: WriterDep,
                      client: MaybeTemporalDep, idempotency_key: IdempotencyKey = None
                      ) -> SecurityGroupRulePublic:
    """409 SecurityGroupRuleExists for a duplicate; the group's ports get the rule on
    their hosts (SyncSecurityGroup)."""
    return SecurityGroupRulePublic.of(
        await sg.create_rule(session, auth, client, body, idempotency_key))


@router.get(RULES, response_model=SecurityGroupRuleList)
def list_rules(session: SessionDep, auth: AuthDep,
               security_group_id: Annotated[str | None, Query(max_length=64)] = None,
               ) -> SecurityGroupRuleList:
    return SecurityGroupRuleList(security_group_rules=[
        SecurityGroupRulePublic.of(r) for r in sg.list_rules(session, auth, security_group_id)])


@router.get(RULES + "/{rule_id}", response_model=SecurityGroupRulePublic)
def show_rule(rule_id: str, session: SessionDep, auth: AuthDep) -> SecurityGroupRulePublic:
    return SecurityGroupRulePublic.of(sg.get_rule(session, auth, rule_id))


@router.delete(RULES + "/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, session: SessionDep, auth: WriterDep,
                      client: MaybeTemporalDep, idempotency_key: IdempotencyKey = None
                      ) -> Response:
    await sg.delete_rule(session, auth, client, rule_id, idempotency_key)
    return Response(status_code=204)
