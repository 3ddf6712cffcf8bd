"""The ledger reconciler's control side for storage hosts (DESIGN decision 9): which
storage hosts to look at, and one host's listing (share and snapshot subvolumes,
export files) compared with its share ledger rows and the share and snapshot rows
(the judgement itself is pure: activities/control/share_orphans.py). Removal reuses the
delete workflows' own storage steps; nothing here touches a storage host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import col, or_, select
from temporalio import activity

from activities.control import share_orphans
from activities.control.base import ClientActivities
from activities.control.ledger import aware
from activities.control.liveness import storage_alive, workflows_running
from vmflow import access_sync
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.reconcile import (
    ReconcileHosts,
    ReconcileLedgerRequest,
    StoragePlan,
    StoragePlanRequest,
    StorageResources,
)
from vmflow.contracts.shares import ShareAccessSync, ShareLedger
from vmflow.models import Ledger, Share, ShareAccessRule, ShareSnapshot, now
from vmflow.names import share_access_workflow_id, share_workflow_id
from vmflow.share_states import RuleState

RULES_IN_FLIGHT = (RuleState.QUEUED_TO_APPLY, RuleState.APPLYING, RuleState.QUEUED_TO_DENY,
                   RuleState.DENYING)


class ShareReconcileActivities(ClientActivities):
    @activity.defn(name=ControlActs.RECONCILE_STORAGE_HOSTS)
    async def reconcile_storage_hosts(self, req: ReconcileLedgerRequest) -> ReconcileHosts:
        """The storage hosts the share rows and the share ledger rows name (only those
        asked for, if any); split by whether a worker polls storage.<host>."""
        known = await asyncio.to_thread(self._storage_hosts)
        names = sorted(known & set(req.hosts)) if req.hosts else sorted(known)
        alive = await asyncio.gather(*(storage_alive(self.client, h) for h in names))
        return ReconcileHosts(alive=[h for h, up in zip(names, alive, strict=True) if up],
                              dead=[h for h, up in zip(names, alive, strict=True) if not up])

    def _storage_hosts(self) -> set[str]:
        with self.session() as s:
            shares = s.exec(select(Share.host).where(col(Share.host).is_not(None)).distinct())
            ledger = s.exec(select(Ledger.host).where(
                col(Ledger.kind).in_(ShareLedger.KINDS)).distinct())
            return {h for h in shares if h} | set(ledger)

    @activity.defn(name=ControlActs.RECONCILE_SHARES)
    async def reconcile_shares(self, req: StoragePlanRequest) -> StoragePlan:
        """Judge one storage host. The listing was taken before the DB is read here, so
        a share made after the listing is not in it, and one in it whose row exists now
        is live. Temporal is asked (share-<id>: the operation mutex) only about the
        shares something would be done or said about."""
        grace = self.settings.reconcile_grace if req.grace_s is None else req.grace_s
        facts = await asyncio.to_thread(self._facts, req.resources, grace)
        first = share_orphans.classify(facts)
        ids = ([share_workflow_id(i) for i in first.asked]
               + [share_access_workflow_id(i) for i in first.asked_access])
        running = await workflows_running(self.client, ids)
        busy = frozenset(i for i in first.asked if share_workflow_id(i) in running)
        syncing = frozenset(i for i in first.asked_access
                            if share_access_workflow_id(i) in running)
        plan = share_orphans.classify(replace(facts, running=busy, access_running=syncing)
                                      ).plan(req.resources.host)
        activity.logger.info(
            "ledger reconcile of storage host %s: %d to remove, %d entries to forget, "
            "%d reported, %d deferred", plan.host, len(plan.remove), len(plan.forget),
            len(plan.reported), len(plan.deferred))
        return plan

    def _facts(self, res: StorageResources, grace_s: float) -> share_orphans.StorageFacts:
        host = res.host
        with self.session() as s:
            ledger = [share_orphans.LedgerRow(r.kind, r.key, aware(r.created_at))
                      for r in s.exec(select(Ledger).where(
                          Ledger.host == host, col(Ledger.kind).in_(ShareLedger.KINDS)))]
            snapshot_ids = ({x.id for x in res.snapshots}
                            | {r.key for r in ledger if r.kind == ShareLedger.SNAPSHOT})
            snapshots = {x.id: share_orphans.SnapshotRow(x.id, x.share_id, x.status,
                                                         aware(x.updated_at))
                         for x in s.exec(select(ShareSnapshot).where(or_(
                             col(ShareSnapshot.id).in_(sorted(snapshot_ids)),
                             col(ShareSnapshot.share_id).in_(
                                 select(Share.id).where(Share.host == host)))))}
            share_ids = ({x.id for x in res.shares} | {e.share_id for e in res.exports}
                         | {r.key for r in ledger if r.kind == ShareLedger.SHARE}
                         | {x.share_id for x in snapshots.values()})
            shares = {x.id: share_orphans.ShareRow(x.id, x.status, x.host, aware(x.updated_at))
                      for x in s.exec(select(Share).where(or_(
                          col(Share.id).in_(sorted(share_ids)), Share.host == host)))}
            in_flight: dict[str, datetime] = {}
            for rule in s.exec(select(ShareAccessRule).where(
                    col(ShareAccessRule.state).in_(RULES_IN_FLIGHT),
                    col(ShareAccessRule.share_id).in_(select(Share.id).where(
                        Share.host == host)))):
                changed = aware(rule.updated_at)
                in_flight[rule.share_id] = max(changed, in_flight.get(rule.share_id, changed))
        return share_orphans.StorageFacts(res, ledger, shares, snapshots, frozenset(),
                                          aware(now()), grace_s, in_flight)

    @activity.defn(name=ControlActs.RESYNC_SHARE_ACCESS)
    async def resync_share_access(self, req: ShareAccessSync) -> None:
        """Signal the share's access sync again, as the API does after allow/deny."""
        share = await asyncio.to_thread(self._share, req.share_id)
        if share is None:  # gone meanwhile: nothing to enforce
            return
        await access_sync.signal_access_sync(self.client, share.id, share.project_id, req.host)

    def _share(self, share_id: str) -> Share | None:
        with self.session() as s:
            return s.get(Share, share_id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.reconcile_storage_hosts, self.reconcile_shares, self.resync_share_access]
