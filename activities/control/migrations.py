"""Control activities of live migration: the Migration row (Nova's migrations table,
type live-migration: queued, preparing, running, completed | failed | cancelled |
error), an admin's chosen destination judged as the scheduler would, the
destination's migration URI, and the move of host, claims and ledger once the guest
runs on the destination.

The destination's claim is keyed by the migration's uuid while the migration runs
(the source keeps the instance's own claim; Nova's migration-based allocations), and
becomes the instance's claim when the guest has moved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, delete, select
from temporalio import activity

from activities.control import scheduler
from activities.control.base import ClientActivities
from activities.control.instances import (
    ControlActivities,
    agent_enabled,
    image_file,
    linked_image,
)
from activities.control.liveness import host_alive
from activities.control.metadata_docs import config_drive
from activities.errors import permanent
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import InstanceHost
from vmflow.contracts.migrations import (
    CheckDestination,
    LiveMigrateRequest,
    LiveMigrationPlan,
    MigrationDone,
    MigrationTarget,
    MigrationUpdate,
)
from vmflow.models import Allocation, Flavor, Host, Image, Instance, Ledger, Migration, now

LIVE = "live-migration"


def no_valid_host(host: str, why: str) -> Exception:
    return permanent(f"No valid host was found. {host}: {why}.", Errors.NO_VALID_HOST)


class MigrationActivities(ClientActivities):
    @activity.defn(name=ControlActs.LIVE_MIGRATION_BEGIN)
    def live_migration_begin(self, req: LiveMigrateRequest) -> LiveMigrationPlan:
        """The operation's Migration row (made once: a retry finds it) and the plan."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None or not inst.host:
                raise permanent(f"instance {req.instance_id} has no host", Errors.NOT_FOUND)
            flavor, image = s.get(Flavor, inst.flavor_id), s.get(Image, inst.image_id)
            if flavor is None or image is None:
                raise permanent("the instance's flavor or image no longer exists",
                                Errors.NOT_FOUND)
            mig = s.exec(select(Migration).where(Migration.operation_id == req.operation_id)
                         ).first()
            if mig is None:
                mig = Migration(instance_id=inst.id, project_id=inst.project_id,
                                user_id=inst.user_id, operation_id=req.operation_id,
                                migration_type=LIVE, status="queued", source_host=inst.host,
                                dest_host=req.host, old_flavor_id=flavor.id,
                                new_flavor_id=flavor.id)
                s.add(mig)
                s.commit()
            props = image.properties or {}
            required, forbidden = scheduler.traits_from_extra_specs(flavor.extra_specs or {})
            st = self.settings
            return LiveMigrationPlan(
                migration_id=mig.uuid, instance_id=inst.id, source=inst.host,
                vcpus=flavor.vcpus, ram_mb=flavor.ram_mb, disk_gb=flavor.disk_gb,
                required_traits=required, forbidden_traits=forbidden,
                root=image_file(image), kernel=linked_image(s, image, "kernel_id"),
                ramdisk=linked_image(s, image, "ramdisk_id"),
                cmdline=str(props.get("os_command_line", "")), agent=agent_enabled(image),
                config_drive=config_drive(s, inst),
                schedule_to_start_s=st.schedule_to_start_timeout,
                schedule_attempts=st.schedule_attempts,
                downtime_ms=st.live_migration_downtime_ms,
                completion_timeout_s=st.live_migration_completion_timeout,
                timeout_action=st.live_migration_timeout_action,
            )

    @activity.defn(name=ControlActs.CHECK_DESTINATION)
    async def check_destination(self, req: CheckDestination) -> None:
        """Nova checks a requested host with the scheduler's filters too: state,
        traits, room (the claim checks the room again, atomically)."""
        if req.host == req.source:
            raise no_valid_host(req.host, "it is the instance's own host")
        with self.session() as s:
            states = [h for h in ControlActivities._host_states(s) if h.name == req.host]
        if not states:
            raise no_valid_host(req.host, "not a registered host")
        alive = await host_alive(self.client, req.host, self.settings.host_down_after)
        state = states[0]
        state = scheduler.HostState(**{**state.__dict__, "alive": alive})
        request = scheduler.Request(req.vcpus, req.ram_mb, req.disk_gb, req.required_traits,
                                    req.forbidden_traits)
        ratios = scheduler.Ratios(self.settings.cpu_allocation_ratio,
                                  self.settings.ram_allocation_ratio, 1.0,
                                  self.settings.reserved_host_ram_mb)
        why = (scheduler.state_rejection(state) or scheduler.trait_rejection(state, request)
               or scheduler.capacity_rejection(state, request, ratios))
        if why:
            raise no_valid_host(req.host, why)

    @activity.defn(name=ControlActs.MIGRATION_TARGET)
    def migration_target(self, ref: InstanceHost) -> MigrationTarget:
        """What the source's libvirtd dials for a peer-to-peer migration to the host, as
        its worker reported it (Host.migration_uri; before hosts reported one, the
        libvirt URI they did report)."""
        with self.session() as s:
            host = s.get(Host, ref.host)
            uri = (host.migration_uri or host.libvirt_uri) if host else ""
        if not uri:
            raise permanent(f"host {ref.host} reported no migration URI", Errors.NO_VALID_HOST)
        return MigrationTarget(ref.host, uri)

    @activity.defn(name=ControlActs.MIGRATION_UPDATE)
    def migration_update(self, req: MigrationUpdate) -> None:
        with self.session() as s:
            mig = self._row(s, req.migration_id)
            if req.status is not None:
                mig.status = req.status
            if req.dest_host is not None:
                mig.dest_host = req.dest_host
            if req.progress is not None:
                p = req.progress
                mig.memory_total, mig.memory_processed = p.memory_total, p.memory_processed
                mig.memory_remaining, mig.disk_total = p.memory_remaining, p.disk_total
                mig.disk_processed, mig.disk_remaining = p.disk_processed, p.disk_remaining
            mig.updated_at = now()
            s.add(mig)
            s.commit()

    @activity.defn(name=ControlActs.LIVE_MIGRATION_DONE)
    def live_migration_done(self, req: MigrationDone) -> None:
        """One transaction: the instance's host is the destination, the source's claim
        is released, the destination's claim becomes the instance's, the ledger says
        so. Running it again changes nothing."""
        with self.session() as s:
            inst = s.get(Instance, req.instance_id)
            if inst is None:
                raise permanent(f"instance {req.instance_id} does not exist", Errors.NOT_FOUND)
            inst.host, inst.updated_at = req.dest, now()
            s.add(inst)
            held = s.get(Allocation, req.migration_id)
            if held is not None:
                s.exec(delete(Allocation).where(col(Allocation.instance_id) == inst.id))
                s.delete(held)
                s.flush()
                s.add(Allocation(instance_id=inst.id, host=req.dest, vcpus=held.vcpus,
                                 ram_mb=held.ram_mb, disk_gb=held.disk_gb))
            s.exec(delete(Ledger).where(col(Ledger.host) == req.source,
                                        col(Ledger.kind) == "claim",
                                        col(Ledger.key) == inst.id))
            for row in s.exec(select(Ledger).where(Ledger.host == req.dest,
                                                   Ledger.kind == "claim",
                                                   Ledger.key == req.migration_id)):
                row.key = inst.id
                s.add(row)
            mig = self._row(s, req.migration_id)
            p = req.progress
            mig.memory_total, mig.memory_processed = p.memory_total, p.memory_processed
            mig.memory_remaining, mig.disk_total = p.memory_remaining, p.disk_total
            mig.disk_processed, mig.disk_remaining = p.disk_processed, p.disk_remaining
            mig.updated_at = now()
            s.add(mig)
            s.commit()

    @staticmethod
    def _row(s: Session, migration_id: str) -> Migration:
        mig = s.exec(select(Migration).where(Migration.uuid == migration_id)).first()
        if mig is None:
            raise permanent(f"migration {migration_id} does not exist", Errors.NOT_FOUND)
        return mig

    def all(self) -> list[Callable[..., Any]]:
        return [self.live_migration_begin, self.check_destination, self.migration_target,
                self.migration_update, self.live_migration_done]
