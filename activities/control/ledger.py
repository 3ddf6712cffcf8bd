"""The ledger reconciler's control side (DESIGN decision 9): which hosts to look at,
and one host's listing compared with the ledger, the claims and the instance rows
(the judgement itself is pure: activities/control/host_orphans.py). Removal reuses the delete
workflow's own steps; nothing here touches a host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlmodel import and_, col, or_, select
from temporalio import activity

from activities.control import host_orphans as orphans
from activities.control.base import ClientActivities
from activities.control.liveness import host_alive, workflows_running
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.reconcile import (
    HostResources,
    ReconcileHosts,
    ReconcileLedgerRequest,
    ReconcilePlan,
    ReconcilePlanRequest,
)
from vmflow.contracts.shares import ShareLedger
from vmflow.models import Allocation, Host, Instance, Ledger, Migration, now
from vmflow.names import instance_workflow_id

# Migration statuses after which a move holds nothing any more (Nova's, every type)
MOVE_ENDED = ("confirmed", "reverted", "error", "completed", "failed", "cancelled", "done")


def aware(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; every one we write is UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class LedgerReconcileActivities(ClientActivities):
    @activity.defn(name=ControlActs.RECONCILE_HOSTS)
    async def reconcile_hosts(self, req: ReconcileLedgerRequest) -> ReconcileHosts:
        """The hosts asked for, or every registered host and every host the ledger
        names (not for shares: storage hosts are judged apart); split by whether a
        worker polls hv.<host> (asking a dead one would only wait for its
        schedule-to-start timeout)."""
        names = sorted(set(req.hosts)) if req.hosts else await asyncio.to_thread(
            self._known_hosts)
        alive = await asyncio.gather(*(host_alive(self.client, h, self.settings.host_down_after)
                                     for h in names))
        return ReconcileHosts(alive=[h for h, up in zip(names, alive, strict=True) if up],
                              dead=[h for h, up in zip(names, alive, strict=True) if not up])

    def _known_hosts(self) -> list[str]:
        with self.session() as s:
            return sorted(set(s.exec(select(Host.name)).all())
                          | set(s.exec(select(Ledger.host).where(
                              col(Ledger.kind).not_in(ShareLedger.KINDS)).distinct()).all()))

    @activity.defn(name=ControlActs.RECONCILE_PLAN)
    async def reconcile_plan(self, req: ReconcilePlanRequest) -> ReconcilePlan:
        """Judge one host. The listing was taken before the DB is read here, so a
        resource made after the listing is not in it, and one in it whose instance
        row exists now is live. Temporal is asked (instance-<id>: the operation
        mutex) only about the instances something would be done or said about."""
        grace = self.settings.reconcile_grace if req.grace_s is None else req.grace_s
        facts = await asyncio.to_thread(self._facts, req.resources, grace)
        asked = orphans.classify(facts).ids()
        running = await workflows_running(self.client, [instance_workflow_id(i) for i in asked])
        busy = frozenset(i for i in asked if instance_workflow_id(i) in running)
        plan = orphans.classify(replace(facts, running=busy)).plan(req.resources.host)
        activity.logger.info(
            "ledger reconcile of %s: %d to remove, %d entries to forget, %d reported, "
            "%d deferred", plan.host, len(plan.remove), len(plan.forget), len(plan.reported),
            len(plan.deferred))
        return plan

    def _facts(self, resources: HostResources, grace_s: float) -> orphans.HostFacts:
        host = resources.host
        with self.session() as s:
            ledger = [orphans.LedgerRow(r.kind, r.key, r.instance_id, aware(r.created_at))
                      for r in s.exec(select(Ledger).where(
                          Ledger.host == host, Ledger.kind != "cache",
                          col(Ledger.instance_id).is_not(None)))
                      if r.instance_id]
            claims = {a.instance_id: aware(a.created_at)
                      for a in s.exec(select(Allocation).where(Allocation.host == host))}
            named = ({d.instance_id for d in resources.domains}
                     | {d.instance_id for d in resources.dirs}
                     | {r.instance_id for r in ledger} | set(claims))
            rows = s.exec(select(Instance).where(or_(
                col(Instance.id).in_(sorted(named)),
                and_(col(Instance.host) == host, col(Instance.vm_state) != "deleted"))))
            instances = {
                i.id: orphans.InstanceRow(i.id, i.vm_state, i.host,
                                          aware(i.deleted_at) if i.deleted_at else None)
                for i in rows}
            moving = {m.uuid: m.instance_id for m in s.exec(select(Migration).where(
                col(Migration.status).not_in(MOVE_ENDED),
                or_(col(Migration.source_host) == host, col(Migration.dest_host) == host)))}
        return orphans.HostFacts(resources, ledger, claims, instances, frozenset(), aware(now()),
                                 grace_s, moving)

    def all(self) -> list[Callable[..., Any]]:
        return [self.reconcile_hosts, self.reconcile_plan]
