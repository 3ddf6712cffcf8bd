"""Evacuate's database steps (workflows/instance/evacuate.py) and those of the clean-up
on the old host when it comes back (Nova's _destroy_evacuated_instances, run by
RegisterHost). Nothing here touches a host."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, delete, select
from temporalio import activity

from activities.control.base import ClientActivities
from activities.control.instances import launch_plan
from activities.control.liveness import host_alive
from activities.errors import permanent
from vmflow import states
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.evacuate import (
    EvacuatedGuest,
    EvacuatedGuests,
    EvacuateRequest,
    EvacuationCleaned,
    EvacuationEnd,
    EvacuationEnded,
    EvacuationPlan,
    MigrationStatus,
)
from vmflow.contracts.reconcile import HostRef
from vmflow.models import Host, Image, Instance, Ledger, Migration, Operation, now

EVACUATION = "evacuation"
# Nova's evacuation statuses: accepted -> pre-migrating -> done | failed; done ->
# completed once the old host destroyed its copy
ACCEPTED, PRE_MIGRATING, DONE, FAILED, COMPLETED = (
    "accepted", "pre-migrating", "done", "failed", "completed")


def aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def source_in_use(host: Host, heartbeat_fresh: bool) -> bool:
    """Nova's servicegroup judgement: up unless forced down or its heartbeat aged."""
    return heartbeat_fresh and not host.forced_down


class EvacuateActivities(ClientActivities):
    @activity.defn(name=ControlActs.BEGIN_EVACUATION)
    async def begin_evacuation(self, req: EvacuateRequest) -> EvacuationPlan:
        """The API's checks once more (the source may have come back since), then the
        Migration row, made once per operation (a retry finds it). A refusal ends the
        operation; settling its row gives the task_state back."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            source = s.get(Host, inst.host) if inst is not None and inst.host else None
        if source is None:
            raise permanent(f"instance {req.instance_id} has no host to evacuate from",
                            Errors.INVALID_STATE)
        fresh = await host_alive(self.client, source.name, self.settings.host_down_after)
        return self._begin(req, fresh)

    def _begin(self, req: EvacuateRequest, source_fresh: bool) -> EvacuationPlan:
        with self.session() as s:
            op = s.get(Operation, req.operation_id)
            if op is not None and op.status != "running":
                raise permanent(f"operation {op.id} already ended ({op.status})",
                                Errors.INVALID_STATE)
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.vm_state == states.VmState.DELETED or not inst.host:
                raise permanent(f"instance {req.instance_id} does not exist",
                                Errors.NOT_FOUND)
            source = s.get(Host, inst.host)
            if source is not None and source_in_use(source, source_fresh):
                raise permanent(f"Compute service of {inst.host} is still in use.",
                                Errors.INVALID_STATE)
            if states.VmState(inst.vm_state) not in states.TRANSITIONS["evacuate"].allowed_from:
                raise permanent(str(states.ActionNotAllowed("evacuate", inst.vm_state)),
                                Errors.INVALID_STATE)
            plan = launch_plan(self.settings, s, inst, s.get(Image, inst.image_id))
            mig = s.exec(select(Migration).where(
                Migration.operation_id == req.operation_id)).first()
            if mig is None:
                mig = Migration(instance_id=inst.id, project_id=inst.project_id,
                                user_id=op.user_id if op else inst.user_id,
                                operation_id=req.operation_id, migration_type=EVACUATION,
                                status=ACCEPTED, source_host=inst.host, dest_host=req.host,
                                old_flavor_id=inst.flavor_id, new_flavor_id=inst.flavor_id)
                s.add(mig)
            s.commit()
            assert mig.id is not None
            return EvacuationPlan(plan, inst.host, inst.vm_state, mig.id, req.host)

    @activity.defn(name=ControlActs.EVACUATION_STATUS)
    def evacuation_status(self, req: MigrationStatus) -> None:
        with self.session() as s:
            mig = s.get(Migration, req.migration_id)
            if mig is None:
                return
            mig.status, mig.updated_at = req.status, now()
            if req.dest_host is not None:
                mig.dest_host = req.dest_host
            s.add(mig)
            s.commit()

    @activity.defn(name=ControlActs.END_EVACUATION)
    def end_evacuation(self, req: EvacuationEnd) -> EvacuationEnded:
        """Server, operation and Migration row in one transaction. Succeeded: the server
        lives on the destination, its fault cleared. Otherwise it stays on its source
        in the state it had, with the fault."""
        ok = req.status == "succeeded"
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is not None and inst.vm_state != states.VmState.DELETED:
                inst.host, inst.vm_state, inst.task_state = req.host, req.vm_state, None
                inst.fault, inst.updated_at = (None if ok else req.fault), now()
                s.add(inst)
            op = s.get(Operation, req.operation_id)
            if op is not None:
                op.status, op.last_error, op.finished_at = req.status, req.fault, now()
                s.add(op)
            mig = s.get(Migration, req.migration_id)
            back = False
            if mig is not None:
                mig.status, mig.updated_at = (DONE if ok else FAILED), now()
                if ok:
                    mig.dest_host = req.host
                    src = s.get(Host, mig.source_host) if mig.source_host else None
                    back = src is not None and aware(src.registered_at) > aware(mig.created_at)
                s.add(mig)
            s.commit()
            return EvacuationEnded(source_back=back)

    # ---- the old host comes back -----------------------------------------------------
    @activity.defn(name=ControlActs.EVACUATED_FROM)
    def evacuated_from(self, ref: HostRef) -> EvacuatedGuests:
        """The evacuations away from this host that are done and whose old copy is still
        there. A server that lives on this host again (evacuated back) keeps its domain:
        only its row is closed."""
        with self.session() as s:
            rows = s.exec(select(Migration).where(
                Migration.migration_type == EVACUATION, Migration.source_host == ref.host,
                Migration.status == DONE).order_by(col(Migration.id))).all()
            guests = []
            for m in rows:
                inst = s.get(Instance, m.instance_id)
                lives_here = (inst is not None and inst.host == ref.host
                              and inst.vm_state != states.VmState.DELETED)
                assert m.id is not None
                guests.append(EvacuatedGuest(m.id, m.instance_id, remove=not lives_here))
            return EvacuatedGuests(ref.host, guests)

    @activity.defn(name=ControlActs.EVACUATION_CLEANED)
    def evacuation_cleaned(self, req: EvacuationCleaned) -> None:
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None or inst.host != req.host:  # not a server that lives here again
                s.exec(delete(Ledger).where(
                    col(Ledger.host) == req.host, col(Ledger.instance_id) == req.instance_id,
                    col(Ledger.kind).in_(["disk", "domain", "claim"])))
            mig = s.get(Migration, req.migration_id)
            if mig is not None and mig.status == DONE:
                mig.status, mig.updated_at = COMPLETED, now()
                s.add(mig)
            s.commit()

    def all(self) -> list[Callable[..., Any]]:
        return [self.begin_evacuation, self.evacuation_status, self.end_evacuation,
                self.evacuated_from, self.evacuation_cleaned]
