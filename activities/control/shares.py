"""Control activities of the share workflows: their database steps (share, access
rules, snapshots). Each is safe to repeat; a row that is already gone is no error
for the steps that only settle or remove it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import col, delete, select
from temporalio import activity

from activities.control.base import DbActivities
from activities.errors import permanent
from vmflow.contracts.shares import (
    AccessRuleSpec,
    RulesApplied,
    ShareControlActs,
    ShareErrors,
    SharePlan,
    ShareRef,
    ShareRuleIds,
    ShareUpdate,
    SnapshotSpec,
    SnapshotUpdate,
)
from vmflow.models import Share, ShareAccessRule, ShareSnapshot, now
from vmflow.share_states import RuleState, ShareStatus

# while the share is going away, its rules are not applied any more
NO_ACCESS_SYNC = frozenset({ShareStatus.DELETING, ShareStatus.ERROR_DELETING})


class ShareControlActivities(DbActivities):
    @activity.defn(name=ShareControlActs.PLAN)
    def share_plan(self, ref: ShareRef) -> SharePlan:
        with self.session() as s:
            share = s.get(Share, ref.share_id)
            if share is None:
                raise permanent(f"share {ref.share_id} does not exist", ShareErrors.NOT_FOUND)
            source = None
            if ref.snapshot_id:
                snap = s.get(ShareSnapshot, ref.snapshot_id)
                if snap is None:
                    raise permanent(f"share snapshot {ref.snapshot_id} does not exist",
                                    ShareErrors.NOT_FOUND)
                source = snap.share_id
            snapshots = s.exec(select(ShareSnapshot.id).where(
                ShareSnapshot.share_id == share.id).order_by(col(ShareSnapshot.created_at))).all()
            return SharePlan(share.id, share.status, share.size_gb,
                             self.settings.schedule_to_start_timeout, source, list(snapshots))

    @activity.defn(name=ShareControlActs.SET_SHARE)
    def share_set(self, u: ShareUpdate) -> None:
        with self.session() as s:
            share = s.get(Share, u.share_id)
            if share is None:
                return  # force-deleted meanwhile: nothing to record
            if u.status is not None:
                share.status = u.status
            if u.export_locations is not None:
                share.export_locations = list(u.export_locations)
            if u.size_gb is not None:
                share.size_gb = u.size_gb
            if u.access_rules_status is not None:
                share.access_rules_status = u.access_rules_status
            if u.clear_fault:
                share.fault = None
            if u.fault is not None:
                share.fault = u.fault
            share.updated_at = now()
            s.add(share)
            s.commit()

    @activity.defn(name=ShareControlActs.FINISH_SHARE)
    def share_finish(self, ref: ShareRef) -> None:
        """The share is gone on the backend: its rules, snapshots and row go too."""
        with self.session() as s:
            s.exec(delete(ShareAccessRule).where(
                col(ShareAccessRule.share_id) == ref.share_id))
            s.exec(delete(ShareSnapshot).where(
                col(ShareSnapshot.share_id) == ref.share_id))
            s.exec(delete(Share).where(col(Share.id) == ref.share_id))
            s.commit()

    @activity.defn(name=ShareControlActs.RULES_TO_APPLY)
    def share_rules_to_apply(self, ref: ShareRef) -> ShareRuleIds:
        """Queued rules move on (queued_to_apply → applying, queued_to_deny → denying);
        the answer is every rule that should be in force and the ones going away."""
        with self.session() as s:
            share = s.exec(select(Share).where(Share.id == ref.share_id).with_for_update()).first()
            if share is None or share.status in NO_ACCESS_SYNC:
                raise permanent(f"share {ref.share_id} is gone or being deleted",
                                ShareErrors.NOT_FOUND)
            rules = s.exec(select(ShareAccessRule).where(
                ShareAccessRule.share_id == share.id).order_by(
                col(ShareAccessRule.created_at))).all()
            moves = {RuleState.QUEUED_TO_APPLY: RuleState.APPLYING,
                     RuleState.QUEUED_TO_DENY: RuleState.DENYING}
            for rule in rules:
                if rule.state in moves:
                    rule.state, rule.updated_at = moves[RuleState(rule.state)], now()
                    s.add(rule)
            share.access_rules_status, share.updated_at = "syncing", now()
            s.add(share)
            s.commit()
            wanted = [AccessRuleSpec(r.id, r.access_type, r.access_to, r.access_level)
                      for r in rules if r.state in (RuleState.APPLYING, RuleState.ACTIVE)]
            denying = [r.id for r in rules if r.state == RuleState.DENYING]
            return ShareRuleIds(share.id, wanted, denying)

    @activity.defn(name=ShareControlActs.RULES_APPLIED)
    def share_rules_applied(self, r: RulesApplied) -> None:
        """What the exporter did with this round: applying → active | error (with the
        exporter's reason), denying → deleted (row removed) | error. Rules that were
        already active stay so; the share's access_rules_status follows its rules."""
        applied, denied = set(r.applied), set(r.denied)
        with self.session() as s:
            share = s.exec(select(Share).where(Share.id == r.share_id).with_for_update()).first()
            if share is None:
                return  # force-deleted meanwhile
            rules = s.exec(select(ShareAccessRule).where(
                ShareAccessRule.share_id == share.id)).all()
            for rule in rules:
                if rule.state == RuleState.APPLYING:
                    if rule.id in r.errors or rule.id not in applied:
                        rule.state = RuleState.ERROR
                        rule.fault = r.errors.get(rule.id, "the exporter did not apply the rule")
                    else:
                        rule.state, rule.fault = RuleState.ACTIVE, None
                elif rule.state == RuleState.DENYING:
                    if rule.id in r.errors:
                        rule.state, rule.fault = RuleState.ERROR, r.errors[rule.id]
                    elif rule.id in denied:
                        s.delete(rule)  # the API lists only rules that still exist
                        continue
                else:
                    continue
                rule.updated_at = now()
                s.add(rule)
            s.flush()
            left = [x.state for x in s.exec(select(ShareAccessRule).where(
                ShareAccessRule.share_id == share.id)).all()]
            if RuleState.ERROR in left:
                share.access_rules_status = "error"
            elif RuleState.QUEUED_TO_APPLY in left or RuleState.QUEUED_TO_DENY in left:
                share.access_rules_status = "syncing"  # the next round (a signal) follows
            else:
                share.access_rules_status = "active"
            share.updated_at = now()
            s.add(share)
            s.commit()

    @activity.defn(name=ShareControlActs.SET_SNAPSHOT)
    def share_snapshot_set(self, u: SnapshotUpdate) -> None:
        with self.session() as s:
            snap = s.get(ShareSnapshot, u.snapshot_id)
            if snap is None:
                return  # force-deleted with its share meanwhile
            snap.status, snap.fault, snap.updated_at = u.status, u.fault, now()
            s.add(snap)
            s.commit()

    @activity.defn(name=ShareControlActs.FINISH_SNAPSHOT)
    def share_snapshot_finish(self, spec: SnapshotSpec) -> None:
        with self.session() as s:
            s.exec(delete(ShareSnapshot).where(
                col(ShareSnapshot.id) == spec.snapshot_id))
            s.commit()

    def all(self) -> list[Callable[..., Any]]:
        return [self.share_plan, self.share_set, self.share_finish, self.share_rules_to_apply,
                self.share_rules_applied, self.share_snapshot_set, self.share_snapshot_finish]
