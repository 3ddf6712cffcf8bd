"""Control-plane activities: the database steps of every workflow (DESIGN: the
control worker runs workflows and these; hosts never touch the database)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cached_property
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, delete, select, update
from temporalio import activity

from activities.control import scheduler
from activities.control.base import ClientActivities
from activities.control.liveness import HostHeartbeats
from activities.control.metadata_docs import config_drive
from activities.errors import permanent
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import (
    ClaimRequest,
    DeletePlan,
    FinishOperation,
    HostInfo,
    ImageFile,
    InstanceHost,
    InstanceRef,
    InstanceUpdate,
    LaunchPlan,
    LedgerEntries,
    OperationRef,
    ScheduleRequest,
    ScheduleResult,
)
from vmflow.models import (
    Allocation,
    Flavor,
    Host,
    Image,
    Instance,
    Ledger,
    Operation,
    now,
)
from vmflow.settings import Settings


def agent_enabled(image: Image | None) -> bool:
    """The image property hw_qemu_guest_agent, read the way Glance spells booleans."""
    props = image.properties if image else {}
    return str((props or {}).get("hw_qemu_guest_agent", "")).lower() in ("yes", "true", "1")


def image_file(image: Image) -> ImageFile:
    """What a host needs to fetch an image: hosts download it from the image service
    (activities/hypervisor/image_transfer.py), so the location is the API path of its data."""
    if image.status != "active" or not image.location or not image.checksum:
        raise permanent(f"image {image.id} is not active (status {image.status})",
                        Errors.IMAGE_INVALID)
    return ImageFile(image.id, f"/v1/images/{image.id}/file", image.checksum, image.size or 0,
                     image.disk_format)


def linked_image(s: Session, image: Image, key: str) -> ImageFile | None:
    """The kernel or ramdisk an image names in its property `key` (kernel_id,
    ramdisk_id), as Glance links them; None when it names none."""
    linked_id = (image.properties or {}).get(key)
    if not linked_id:
        return None
    linked = s.get(Image, linked_id)
    if linked is None:
        raise permanent(f"image {image.id} refers to missing {key} {linked_id}",
                        Errors.IMAGE_INVALID)
    return image_file(linked)


CANDIDATE_PAGE = 64  # hosts the database ranks per read while scheduling


def launch_plan(settings: Settings, s: Session, inst: Instance, image: Image | None
                ) -> LaunchPlan:
    """What spawning `inst` from `image` on a host needs: launch's plan, and unshelve's
    (whose root is the shelve image)."""
    flavor = s.get(Flavor, inst.flavor_id)
    if flavor is None or image is None:
        raise permanent("the instance's flavor or image no longer exists", Errors.NOT_FOUND)
    props = image.properties or {}
    drive = config_drive(s, inst)
    required, forbidden = scheduler.traits_from_extra_specs(flavor.extra_specs or {})
    return LaunchPlan(
        instance_id=inst.id,
        project_id=inst.project_id,
        vcpus=flavor.vcpus,
        ram_mb=flavor.ram_mb,
        disk_gb=flavor.disk_gb,
        required_traits=required,
        forbidden_traits=forbidden,
        root=image_file(image),
        kernel=linked_image(s, image, "kernel_id"),
        ramdisk=linked_image(s, image, "ramdisk_id"),
        cmdline=str(props.get("os_command_line", "")),
        agent=agent_enabled(image),
        config_drive=drive,
        schedule_to_start_s=settings.schedule_to_start_timeout,
        agent_timeout_s=settings.agent_timeout,
        schedule_attempts=settings.schedule_attempts,
    )


class ControlActivities(ClientActivities):
    # ---- launch ---------------------------------------------------------------
    @activity.defn(name=ControlActs.VALIDATE_LAUNCH)
    def validate_launch(self, ref: OperationRef) -> LaunchPlan:
        with self.session() as s:
            inst = s.get(Instance, ref.instance_id)
            if inst is None:
                raise permanent(f"instance {ref.instance_id} does not exist", Errors.NOT_FOUND)
            if inst.vm_state != "building":
                raise permanent(f"instance is {inst.vm_state}, not building", Errors.INVALID_STATE)
            return launch_plan(self.settings, s, inst, s.get(Image, inst.image_id))

    @activity.defn(name=ControlActs.SCHEDULE)
    async def schedule(self, req: ScheduleRequest) -> ScheduleResult:
        """Filter and weigh in the database, a page of the best candidates at a time,
        and ask Temporal only whether those are up, best first (scheduler.choose). Only
        when none is up are all hosts read, for NoValidHost's reasons; disabled and
        forced-down hosts are rejected whatever their heartbeat says."""
        request = scheduler.Request(req.vcpus, req.ram_mb, req.disk_gb, req.required_traits,
                                    req.forbidden_traits, req.exclude_hosts, req.tried,
                                    req.attempts, req.requested_host)
        ratios, down, offset = self._ratios(), set[str](), 0
        used_up = bool(request.attempts and len(request.tried) >= request.attempts)
        while not used_up:
            page = await asyncio.to_thread(self._read_candidates, request, ratios, offset)
            up, reasons = await scheduler.choose(page, request, ratios, self.heartbeats.alive)
            if up:
                return ScheduleResult(hosts=up)
            down |= {name for name, why in reasons.items() if why == scheduler.DOWN}
            if len(page) < CANDIDATE_PAGE:
                break
            offset += CANDIDATE_PAGE
        # none up: judge every host; one whose room came free meanwhile is asked now
        hosts = await asyncio.to_thread(self._read_host_states)
        up, reasons = await scheduler.choose(hosts, request, ratios, self.heartbeats.alive,
                                             frozenset(down))
        if not up:
            raise permanent(scheduler.no_valid_host_message(reasons), Errors.NO_VALID_HOST)
        return ScheduleResult(hosts=up)

    @cached_property
    def heartbeats(self) -> HostHeartbeats:
        """One per worker, so a fresh heartbeat seen by one placement serves the next."""
        return HostHeartbeats(self.client, self.settings.host_down_after)

    def _ratios(self) -> scheduler.Ratios:
        s = self.settings
        return scheduler.Ratios(s.cpu_allocation_ratio, s.ram_allocation_ratio, 1.0,
                                s.reserved_host_ram_mb)

    def _read_host_states(self) -> list[scheduler.HostState]:
        with self.session() as s:
            return self._host_states(s)

    def _read_candidates(self, req: scheduler.Request, r: scheduler.Ratios,
                         offset: int) -> list[scheduler.HostState]:
        """A page of the enabled, not forced-down, untried hosts with room, most free
        RAM first: the database filters and weighs; scheduler.select judges the page
        again exactly (and applies traits, which live in JSON)."""
        with self.session() as s:
            return self._host_states(s, page=(req, r, offset))

    @staticmethod
    def _host_states(s: Session, name: str | None = None,
                     page: tuple[scheduler.Request, scheduler.Ratios, int] | None = None,
                     ) -> list[scheduler.HostState]:
        """Every host, the one named, or a page of candidates, with what its claims
        use: one query of plain rows, no ORM objects."""
        used = (select(Allocation.host, func.sum(Allocation.vcpus).label("vcpus"),
                       func.sum(Allocation.ram_mb).label("ram_mb"),
                       func.sum(Allocation.disk_gb).label("disk_gb"))
                .group_by(col(Allocation.host)))
        if name is not None:
            used = used.where(Allocation.host == name)
        u = used.subquery()
        host: list[Any] = [col(c) for c in (Host.name, Host.vcpus, Host.ram_mb, Host.disk_gb,
                                            Host.traits, Host.status, Host.disabled_reason,
                                            Host.forced_down)]
        query = (rows_of(*host, u.c.vcpus, u.c.ram_mb, u.c.disk_gb)
                 .outerjoin(u, u.c.host == col(Host.name)))
        if name is not None:
            query = query.where(col(Host.name) == name)
        if page is not None:
            req, r, offset = page
            free_ram = ((col(Host.ram_mb) - r.reserved_ram_mb) * r.ram
                        - func.coalesce(u.c.ram_mb, 0))
            if req.requested_host:  # unshelve to a host: no other is a candidate
                query = query.where(col(Host.name) == req.requested_host)
            query = (query.where(
                col(Host.status) == "enabled", col(Host.forced_down).is_(False),
                col(Host.name).not_in([*req.tried, *req.exclude]),
                col(Host.vcpus) * r.cpu - func.coalesce(u.c.vcpus, 0) >= req.vcpus,
                free_ram >= req.ram_mb,
                col(Host.disk_gb) * r.disk - func.coalesce(u.c.disk_gb, 0) >= req.disk_gb)
                .order_by(free_ram.desc(), col(Host.name))
                .limit(CANDIDATE_PAGE).offset(offset))
        return [
            scheduler.HostState(
                row[0], row[1], row[2], row[3], list(row[4] or []), alive=False,
                used_vcpus=int(row[8] or 0), used_ram_mb=int(row[9] or 0),
                used_disk_gb=int(row[10] or 0),
                status=row[5], disabled_reason=row[6], forced_down=row[7],
            )
            for row in s.connection().execute(query).all()
        ]

    @activity.defn(name=ControlActs.CLAIM)
    def claim(self, req: ClaimRequest) -> None:
        """Atomically check the host still has room and record the allocation. The
        transaction starts with a write to the host's row, which holds its row lock
        (PostgreSQL) or the database's write lock (SQLite, whose driver starts the
        transaction only at the first write): concurrent claims on a host queue there,
        and each reads the room after the ones before it committed."""
        with self.session() as s:
            locked = s.exec(update(Host).where(col(Host.name) == req.host)
                            .values(vcpus=Host.vcpus))
            if not locked.rowcount:
                raise permanent(f"host {req.host} is not registered", Errors.NO_CAPACITY)
            existing = s.get(Allocation, req.instance_id)
            if existing is not None and existing.host == req.host:
                return
            if existing is not None:
                s.delete(existing)
                s.flush()
            # room only: a host disabled after it was chosen still takes the guest (Nova)
            why = scheduler.capacity_rejection(
                self._host_states(s, req.host)[0],
                scheduler.Request(req.vcpus, req.ram_mb, req.disk_gb), self._ratios()
            )
            if why:
                raise permanent(f"host {req.host} can no longer fit the instance: {why}",
                                Errors.NO_CAPACITY)
            s.add(Allocation(instance_id=req.instance_id, host=req.host, vcpus=req.vcpus,
                             ram_mb=req.ram_mb, disk_gb=req.disk_gb))
            s.commit()

    @activity.defn(name=ControlActs.RELEASE_CLAIM)
    def release_claim(self, req: InstanceHost) -> None:
        with self.session() as s:
            s.exec(delete(Allocation).where(col(Allocation.instance_id) == req.instance_id,
                                            col(Allocation.host) == req.host))
            s.commit()

    # ---- ledger -----------------------------------------------------------------
    @activity.defn(name=ControlActs.LEDGER_RECORD)
    def ledger_record(self, req: LedgerEntries) -> None:
        with self.session() as s:
            for e in req.entries:
                found = s.exec(select(Ledger).where(Ledger.host == e.host, Ledger.kind == e.kind,
                                                    Ledger.key == e.key)).first()
                if found is None:
                    s.add(Ledger(host=e.host, kind=e.kind, key=e.key, instance_id=e.instance_id))
            s.commit()

    @activity.defn(name=ControlActs.LEDGER_FORGET)
    def ledger_forget(self, req: LedgerEntries) -> None:
        with self.session() as s:
            for e in req.entries:
                s.exec(delete(Ledger).where(col(Ledger.host) == e.host, col(Ledger.kind) == e.kind,
                                            col(Ledger.key) == e.key))
            s.commit()

    @activity.defn(name=ControlActs.LEDGER_FORGET_INSTANCE)
    def ledger_forget_instance(self, ref: InstanceRef) -> None:
        """Forget every entry an instance owns (cache entries are shared: kept)."""
        with self.session() as s:
            s.exec(delete(Ledger).where(col(Ledger.instance_id) == ref.instance_id,
                                        col(Ledger.kind) != "cache"))
            s.commit()

    # ---- instance and operation state -------------------------------------------
    @activity.defn(name=ControlActs.UPDATE_INSTANCE)
    def update_instance(self, u: InstanceUpdate) -> None:
        with self.session() as s:
            inst = s.get(Instance, u.instance_id)
            if inst is None:
                raise permanent(f"instance {u.instance_id} does not exist", Errors.NOT_FOUND)
            if u.vm_state is not None:
                inst.vm_state = u.vm_state
                if u.vm_state == "deleted":
                    inst.deleted_at = now()
            if u.task_state is not None or u.clear_task_state:
                inst.task_state = u.task_state
            if u.host is not None or u.clear_host:
                inst.host = u.host
            if u.fault is not None or u.clear_fault:
                inst.fault = u.fault
            inst.updated_at = now()
            s.add(inst)
            s.commit()

    @activity.defn(name=ControlActs.FINISH_OPERATION)
    def finish_operation(self, f: FinishOperation) -> None:
        with self.session() as s:
            op = s.get(Operation, f.operation_id)
            if op is None:
                return  # the API never recorded it; nothing to finish
            op.status, op.last_error, op.finished_at = f.status, f.error, now()
            s.add(op)
            s.commit()

    @activity.defn(name=ControlActs.BEGIN_DELETE)
    def begin_delete(self, ref: OperationRef) -> DeletePlan:
        with self.session() as s:
            inst = s.get(Instance, ref.instance_id)
            if inst is None:
                raise permanent(f"instance {ref.instance_id} does not exist", Errors.NOT_FOUND)
            inst.task_state, inst.updated_at = "deleting", now()
            s.add(inst)
            # the host may be unknown to the row if a launch died between claim and update
            alloc = s.get(Allocation, inst.id)
            host = inst.host or (alloc.host if alloc else None)
            s.commit()
            return DeletePlan(instance_id=inst.id, host=host)

    # ---- hosts ------------------------------------------------------------------
    @activity.defn(name=ControlActs.REGISTER_HOST)
    def register_host(self, info: HostInfo) -> None:
        with self.session() as s:
            host = s.get(Host, info.name) or Host(name=info.name, vcpus=0, ram_mb=0, disk_gb=0)
            host.hostname, host.vcpus, host.ram_mb = info.hostname, info.vcpus, info.ram_mb
            host.disk_gb, host.traits, host.virt_type = info.disk_gb, info.traits, info.virt_type
            host.libvirt_uri = info.libvirt_uri  # status and forced_down are the admin's: kept
            host.migration_address, host.migration_uri = info.migration_address, info.migration_uri
            host.registered_at = now()
            s.add(host)
            s.commit()

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.validate_launch, self.schedule, self.claim, self.release_claim,
            self.ledger_record, self.ledger_forget, self.ledger_forget_instance,
            self.update_instance, self.finish_operation, self.begin_delete, self.register_host,
        ]


