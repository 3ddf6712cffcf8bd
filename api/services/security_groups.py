"""Security groups and rules (Neutron v2.0), the logic behind
api/routers/security_groups.py.

Groups and rules are their project's (an admin sees all). Every project has a
`default` group, made on first use of any network call that needs it, with Neutron's
default rules (egress anywhere, ingress from members of the same group); there is
only one, and only an admin may delete it. A rule is checked and normalized by
vmflow.security_rules; a duplicate is 409 SecurityGroupRuleExists (Neutron), kept
unique by the database even when two requests race. A group a port uses is 409
SecurityGroupInUse on delete.

A change reaches the running guests through SyncSecurityGroup (secgroup-<group id>,
vmflow/security_group_sync.py), signalled after the change is committed: a rule made
or deleted syncs its group; a deleted group syncs the groups whose rules named it as
their remote group; a port that joins or leaves groups syncs those that other rules
name as their remote group (their members' filters list its address). When the
signal cannot be sent, a rule change is taken back and the answer is 503: nothing
would apply it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, or_, select
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import AuthContext, scoped
from api.errors import Conflict, NotFound, ServiceUnavailable
from api.schemas.security_groups import (
    SecurityGroupCreate,
    SecurityGroupPublic,
    SecurityGroupRuleCreate,
)
from api.services.networks import ipam_errors
from api.services.operations import find_idempotent, remember_key
from vmflow import security_rules
from vmflow.db import save_given
from vmflow.models import Operation
from vmflow.network_models import (
    DefaultSecurityGroup,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)
from vmflow.security_group_sync import signal_group_sync
from vmflow.security_rules import DEFAULT_GROUP, Rule

log = logging.getLogger(__name__)


def _rule_row(group: SecurityGroup, rule: Rule, description: str = "") -> SecurityGroupRule:
    return SecurityGroupRule(
        security_group_id=group.id, project_id=group.project_id, direction=rule.direction,
        ethertype=rule.ethertype, protocol=rule.protocol, port_range_min=rule.port_range_min,
        port_range_max=rule.port_range_max, remote_ip_prefix=rule.remote_ip_prefix,
        remote_group_id=rule.remote_group_id, description=description,
        signature=rule.signature())


def ensure_default_group(session: Session, project_id: str) -> SecurityGroup:
    """The project's `default` group, made (and committed) on first use; a concurrent
    first use loses on the primary key and reads the winner's."""
    for _ in range(2):
        row = session.get(DefaultSecurityGroup, project_id)
        found = None if row is None else session.get(SecurityGroup, row.security_group_id)
        if found is not None:
            return found
        group = SecurityGroup(name=DEFAULT_GROUP, description="Default security group",
                              project_id=project_id)
        session.add(group)
        try:
            session.flush()
            session.add(DefaultSecurityGroup(project_id=project_id,
                                             security_group_id=group.id))
            session.add_all(_rule_row(group, r) for r in security_rules.default_rules(group.id))
            session.commit()
            return group
        except IntegrityError:
            session.rollback()
    raise Conflict("could not make the default security group; try again")


def get_group(session: Session, auth: AuthContext, group_id: str) -> SecurityGroup:
    group = session.get(SecurityGroup, group_id)
    if group is None or not auth.can_see(group.project_id):
        raise NotFound(f"security group {group_id} not found", type="SecurityGroupNotFound")
    return group


def rules_of(session: Session, group_ids: list[str]) -> dict[str, list[SecurityGroupRule]]:
    out: dict[str, list[SecurityGroupRule]] = {g: [] for g in group_ids}
    for r in session.exec(select(SecurityGroupRule).where(
            col(SecurityGroupRule.security_group_id).in_(group_ids))
            .order_by(col(SecurityGroupRule.created_at), col(SecurityGroupRule.id))):
        out[r.security_group_id].append(r)
    return out


def group_view(session: Session, group: SecurityGroup) -> SecurityGroupPublic:
    return SecurityGroupPublic.of(group, rules_of(session, [group.id])[group.id])


def list_groups(session: Session, auth: AuthContext,
                name: str | None = None) -> list[SecurityGroupPublic]:
    ensure_default_group(session, auth.project_id)
    stmt = scoped(select(SecurityGroup), SecurityGroup.project_id, auth)
    if name is not None:
        stmt = stmt.where(SecurityGroup.name == name)
    groups = list(session.exec(stmt.order_by(col(SecurityGroup.created_at),
                                             col(SecurityGroup.id))))
    rules = rules_of(session, [g.id for g in groups])
    return [SecurityGroupPublic.of(g, rules[g.id]) for g in groups]


def create_group(session: Session, auth: AuthContext, body: SecurityGroupCreate,
                 key: str | None) -> SecurityGroupPublic:
    """With Neutron's two egress rules (any IPv4, any IPv6), as Neutron makes them."""
    earlier = find_idempotent(session, auth, key, "security_group", "create")
    if earlier is not None:
        return group_view(session, get_group(session, auth, earlier.resource_id))
    ensure_default_group(session, auth.project_id)
    if body.name == DEFAULT_GROUP:
        raise Conflict("the project already has its default security group",
                       type="SecurityGroupDefaultAlreadyExists")
    group = SecurityGroup(name=body.name, description=body.description,
                          project_id=auth.project_id)
    session.add(group)
    session.flush()
    session.add_all(_rule_row(group, r) for r in security_rules.default_rules(group.id)
                    if r.direction == "egress")
    remember_key(session, auth, key, "security_group", group.id, "create")
    session.commit()
    return group_view(session, group)


def update_group(session: Session, auth: AuthContext, group_id: str, name: str | None,
                 description: str | None) -> SecurityGroupPublic:
    """Rename or describe; the default group keeps its name (Neutron's
    SecurityGroupCannotUpdateDefault). Rules are what the hosts follow, not names."""
    group = get_group(session, auth, group_id)
    default = session.get(DefaultSecurityGroup, group.project_id)
    if name is not None and name != group.name:
        if default is not None and default.security_group_id == group.id:
            raise Conflict("the default security group keeps its name",
                           type="SecurityGroupCannotUpdateDefault")
        if name == DEFAULT_GROUP:
            raise Conflict("the project already has its default security group",
                           type="SecurityGroupDefaultAlreadyExists")
        group.name = name
    save_given(session, group, description=description)
    return group_view(session, group)


async def delete_group(session: Session, auth: AuthContext, client: Client | None,
                       group_id: str, key: str | None) -> None:
    """409 SecurityGroupInUse while a port is in it; rules of other groups that name it
    as their remote group go with it (Neutron's cascade), and those groups are synced."""
    if find_idempotent(session, auth, key, "security_group", "delete"):
        return
    group = get_group(session, auth, group_id)
    default = session.get(DefaultSecurityGroup, group.project_id)
    is_default = default is not None and default.security_group_id == group.id
    if is_default and not auth.is_admin:
        raise Conflict("only an admin may delete a project's default security group",
                       type="SecurityGroupCannotRemoveDefault")
    ports = session.exec(select(func.count()).select_from(PortSecurityGroup).where(
        PortSecurityGroup.security_group_id == group.id)).one()
    if ports:
        raise Conflict(f"security group {group.id} is in use by {ports} port(s)",
                       type="SecurityGroupInUse")
    referring = set(session.exec(select(SecurityGroupRule.security_group_id).where(
        SecurityGroupRule.remote_group_id == group.id,
        SecurityGroupRule.security_group_id != group.id)))
    session.exec(delete(SecurityGroupRule).where(or_(
        col(SecurityGroupRule.security_group_id) == group.id,
        col(SecurityGroupRule.remote_group_id) == group.id)))
    if is_default:
        session.exec(delete(DefaultSecurityGroup).where(
            col(DefaultSecurityGroup.project_id) == group.project_id))
    session.delete(group)
    remember_key(session, auth, key, "security_group", group.id, "delete")
    session.commit()
    if referring:  # the cascade loosened nothing: a stale rule allows a gone group's ports
        await sync_quietly(client, referring, group.project_id)


# --- rules ---------------------------------------------------------------------------

def get_rule(session: Session, auth: AuthContext, rule_id: str) -> SecurityGroupRule:
    rule = session.get(SecurityGroupRule, rule_id)
    if rule is None or not auth.can_see(rule.project_id):
        raise NotFound(f"security group rule {rule_id} not found",
                       type="SecurityGroupRuleNotFound")
    return rule


def list_rules(session: Session, auth: AuthContext,
               security_group_id: str | None = None) -> list[SecurityGroupRule]:
    ensure_default_group(session, auth.project_id)
    stmt = scoped(select(SecurityGroupRule), SecurityGroupRule.project_id, auth)
    if security_group_id is not None:
        stmt = stmt.where(SecurityGroupRule.security_group_id == security_group_id)
    return list(session.exec(stmt.order_by(col(SecurityGroupRule.created_at),
                                           col(SecurityGroupRule.id))))


async def create_rule(session: Session, auth: AuthContext, client: Client | None,
                      body: SecurityGroupRuleCreate, key: str | None) -> SecurityGroupRule:
    """The rule, then its group synced to the hosts (taken back and 503 if that cannot
    be asked for)."""
    earlier = find_idempotent(session, auth, key, "security_group_rule", "create")
    if earlier is not None:
        return get_rule(session, auth, earlier.resource_id)
    group = get_group(session, auth, body.security_group_id)
    with ipam_errors():
        rule = security_rules.normalize(
            body.direction, body.ethertype, body.protocol, body.port_range_min,
            body.port_range_max, body.remote_ip_prefix, body.remote_group_id)
    if body.remote_group_id is not None:
        remote = get_group(session, auth, body.remote_group_id)
        if remote.project_id != group.project_id:
            raise NotFound(f"security group {body.remote_group_id} not found",
                           type="SecurityGroupNotFound")
    if client is None:  # before anything is written
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    row = _rule_row(group, rule, body.description)
    session.add(row)
    remember_key(session, auth, key, "security_group_rule", row.id, "create")
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.exec(select(SecurityGroupRule.id).where(
            SecurityGroupRule.security_group_id == group.id,
            SecurityGroupRule.signature == rule.signature())).first()
        raise Conflict(f"security group rule already exists: {existing}",
                       type="SecurityGroupRuleExists") from None
    try:
        await signal_sync(client, [group.id], group.project_id)
    except ServiceUnavailable:
        session.delete(row)
        _forget_key(session, auth, key, "security_group_rule", "create")
        session.commit()
        raise
    return row


async def delete_rule(session: Session, auth: AuthContext, client: Client | None,
                      rule_id: str, key: str | None) -> None:
    """The rule gone, then its group synced (put back and 503 if that cannot be asked
    for)."""
    if find_idempotent(session, auth, key, "security_group_rule", "delete"):
        return
    rule = get_rule(session, auth, rule_id)
    if client is None:  # before anything is written
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    kept = SecurityGroupRule.model_validate(rule.model_dump())
    session.delete(rule)
    remember_key(session, auth, key, "security_group_rule", rule.id, "delete")
    session.commit()
    try:
        await signal_sync(client, [kept.security_group_id], kept.project_id)
    except ServiceUnavailable:
        session.add(kept)
        _forget_key(session, auth, key, "security_group_rule", "delete")
        session.commit()
        raise


def _forget_key(session: Session, auth: AuthContext, key: str | None, resource_type: str,
                action: str) -> None:
    """The key remember_key kept for a change that was taken back: a retry does it anew."""
    if key:
        session.exec(delete(Operation).where(
            col(Operation.idempotency_key) == key, col(Operation.resource_type) == resource_type,
            col(Operation.action) == action, col(Operation.project_id) == auth.project_id))


# --- syncing the hosts ------------------------------------------------------------------

async def signal_sync(client: Client | None, group_ids: Iterable[str], project_id: str) -> None:
    """Signal-with-start each group's SyncSecurityGroup; 503 when Temporal cannot be asked."""
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    try:
        await signal_group_sync(client, group_ids, project_id)
    except (RPCError, RuntimeError) as e:
        raise ServiceUnavailable(f"could not signal the security group sync: {e}",
                                 type="TemporalUnavailable") from e


async def sync_quietly(client: Client | None, group_ids: Iterable[str], project_id: str) -> None:
    """signal_sync for a change that is made already and cannot be taken back (a group
    or port gone): a failure is logged; the reconciler's pass and the next change of
    the group catch up."""
    try:
        await signal_sync(client, group_ids, project_id)
    except ServiceUnavailable as e:
        log.warning("security groups %s not synced: %s", sorted(set(group_ids)), e)


def remote_groups(session: Session, group_ids: Iterable[str]) -> set[str]:
    """Those of the groups that some rule names as its remote group."""
    ids = sorted(set(group_ids))
    if not ids:
        return set()
    return {g for g in session.exec(select(SecurityGroupRule.remote_group_id).where(
        col(SecurityGroupRule.remote_group_id).in_(ids)).distinct()) if g}


async def sync_members_changed(session: Session, client: Client | None,
                               group_ids: Iterable[str], project_id: str) -> None:
    """A port joined or left `group_ids`: the groups whose members' filters list their
    members' addresses are synced."""
    named = remote_groups(session, group_ids)
    if named:
        await sync_quietly(client, named, project_id)
