"""The activities of the `control` queue as workflows see them: name, input, output.

Workflows call these (workflows/_base/steps.py `control(ControlStub.schedule, req)`);
the control worker runs the real ones in activities/control/, registered under the
same names. tests/unit/test_activity_stubs.py keeps both sides in step.
"""

from __future__ import annotations

from temporalio import activity

from vmflow.contracts.actions import (
    ActionEnd,
    ActionStart,
    AutoUnrescueRequest,
    InstanceFacts,
    InstanceIds,
    InstanceImage,
    SyncApply,
    SyncCandidates,
    SyncResult,
    TimerStep,
)
from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.evacuate import (
    EvacuatedGuests,
    EvacuateRequest,
    EvacuationCleaned,
    EvacuationEnd,
    EvacuationEnded,
    EvacuationPlan,
    MigrationStatus,
)
from vmflow.contracts.instances import (
    ClaimRequest,
    DeletePlan,
    FinishOperation,
    HostInfo,
    InstanceHost,
    InstanceRef,
    InstanceUpdate,
    LaunchPlan,
    LedgerEntries,
    OperationRef,
    ScheduleRequest,
    ScheduleResult,
)
from vmflow.contracts.migrations import (
    CheckDestination,
    LiveMigrateRequest,
    LiveMigrationPlan,
    MigrationDone,
    MigrationTarget,
    MigrationUpdate,
)
from vmflow.contracts.network_control_stub import RUNS_ON_THE_WORKER, NetworkControlStub
from vmflow.contracts.reconcile import (
    ClosedRowsReport,
    ClosedRowsRequest,
    HostRef,
    ImageStoreReport,
    ImageStoreRequest,
    ReconcileHosts,
    ReconcileLedgerRequest,
    ReconcilePlan,
    ReconcilePlanRequest,
    SettleOperation,
    StoragePlan,
    StoragePlanRequest,
)
from vmflow.contracts.resize import (
    AutoConfirmRequest,
    MoveClaim,
    PendingResizes,
    ResizeDone,
    ResizeEnd,
    ResizePlan,
    ResizeRequest,
    SourceCopy,
)
from vmflow.contracts.shares import (
    RulesApplied,
    ShareAccessSync,
    ShareControlActs,
    SharePlan,
    ShareRef,
    ShareRuleIds,
    ShareUpdate,
    SnapshotSpec,
    SnapshotUpdate,
)
from vmflow.contracts.shelve import (
    OffloadTimerRequest,
    ShelveImage,
    UnshelveEnd,
    UnshelvePlan,
    UnshelveRequest,
)
from vmflow.contracts.snapshots import (
    AwaitOperation,
    OperationOutcome,
    RotateBackups,
    RotatedBackups,
    ScheduledBackupRequest,
    ScheduledBackupStart,
    SnapshotDone,
    SnapshotFailed,
    SnapshotPlan,
    SnapshotRequest,
)

__all__ = ["RUNS_ON_THE_WORKER", "ControlStub"]


class ControlStub(NetworkControlStub):
    """Database steps, the scheduler and the reconcilers' judgements (queue `control`);
    those of guest networks are in NetworkControlStub."""

    # ---- launch and delete ---------------------------------------------------------
    @activity.defn(name=ControlActs.VALIDATE_LAUNCH)
    async def validate_launch(self, ref: OperationRef) -> LaunchPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SCHEDULE)
    async def schedule(self, req: ScheduleRequest) -> ScheduleResult:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.CLAIM)
    async def claim(self, req: ClaimRequest) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RELEASE_CLAIM)
    async def release_claim(self, req: InstanceHost) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.LEDGER_RECORD)
    async def ledger_record(self, req: LedgerEntries) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.LEDGER_FORGET)
    async def ledger_forget(self, req: LedgerEntries) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.LEDGER_FORGET_INSTANCE)
    async def ledger_forget_instance(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.UPDATE_INSTANCE)
    async def update_instance(self, u: InstanceUpdate) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.FINISH_OPERATION)
    async def finish_operation(self, f: FinishOperation) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.BEGIN_DELETE)
    async def begin_delete(self, ref: OperationRef) -> DeletePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.REGISTER_HOST)
    async def register_host(self, info: HostInfo) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- instance actions --------------------------------------------------------------
    @activity.defn(name=ControlActs.BEGIN_ACTION)
    async def begin_action(self, req: ActionStart) -> InstanceFacts:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.END_ACTION)
    async def end_action(self, req: ActionEnd) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SET_IMAGE)
    async def set_instance_image(self, req: InstanceImage) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.START_AUTO_UNRESCUE)
    async def start_auto_unrescue(self, req: AutoUnrescueRequest) -> TimerStep:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- snapshots, backups and their schedules ------------------------------------------
    @activity.defn(name=ControlActs.SNAPSHOT_BEGIN)
    async def snapshot_begin(self, req: SnapshotRequest) -> SnapshotPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SNAPSHOT_DONE)
    async def snapshot_done(self, req: SnapshotDone) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SNAPSHOT_FAILED)
    async def snapshot_failed(self, req: SnapshotFailed) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.ROTATE_BACKUPS)
    async def rotate_backups(self, req: RotateBackups) -> RotatedBackups:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.START_SCHEDULED_BACKUP)
    async def start_scheduled_backup(self, req: ScheduledBackupRequest) -> ScheduledBackupStart:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.AWAIT_OPERATION)
    async def await_operation(self, req: AwaitOperation) -> OperationOutcome:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.DELETE_BACKUP_SCHEDULES)
    async def delete_backup_schedules(self, ref: InstanceRef) -> int:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- reconcilers ---------------------------------------------------------------------
    @activity.defn(name=ControlActs.SYNC_CANDIDATES)
    async def power_sync_candidates(self, req: InstanceIds) -> SyncCandidates:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SYNC_APPLY)
    async def power_sync_apply(self, req: SyncApply) -> SyncResult:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_HOSTS)
    async def reconcile_hosts(self, req: ReconcileLedgerRequest) -> ReconcileHosts:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_PLAN)
    async def reconcile_plan(self, req: ReconcilePlanRequest) -> ReconcilePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_IMAGE_STORE)
    async def reconcile_image_store(self, req: ImageStoreRequest) -> ImageStoreReport:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_STORAGE_HOSTS)
    async def reconcile_storage_hosts(self, req: ReconcileLedgerRequest) -> ReconcileHosts:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_SHARES)
    async def reconcile_shares(self, req: StoragePlanRequest) -> StoragePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RESYNC_SHARE_ACCESS)
    async def resync_share_access(self, req: ShareAccessSync) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- shares (database side) ------------------------------------------------------------
    @activity.defn(name=ShareControlActs.PLAN)
    async def share_plan(self, ref: ShareRef) -> SharePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.SET_SHARE)
    async def share_set(self, u: ShareUpdate) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.FINISH_SHARE)
    async def share_finish(self, ref: ShareRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.RULES_TO_APPLY)
    async def share_rules_to_apply(self, ref: ShareRef) -> ShareRuleIds:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.RULES_APPLIED)
    async def share_rules_applied(self, r: RulesApplied) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.SET_SNAPSHOT)
    async def share_snapshot_set(self, u: SnapshotUpdate) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ShareControlActs.FINISH_SNAPSHOT)
    async def share_snapshot_finish(self, spec: SnapshotSpec) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- operation rows left running (workflows/_base/operation.py, the reconciler) ------
    @activity.defn(name=ControlActs.SETTLE_OPERATION)
    async def settle_operation(self, req: SettleOperation) -> bool:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SETTLE_CLOSED)
    async def settle_closed_operations(self, req: ClosedRowsRequest) -> ClosedRowsReport:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- shelve and unshelve (activities/control/shelve.py) ----------------------------
    @activity.defn(name=ControlActs.SHELVE_IMAGE)
    async def shelve_image(self, req: ShelveImage) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SHELVE_DONE)
    async def shelve_done(self, req: ShelveImage) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SHELVE_DISCARD)
    async def shelve_discard_image(self, req: ShelveImage) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.SHELVE_FORGET)
    async def shelve_forget(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.START_SHELVE_OFFLOAD)
    async def start_shelve_offload(self, req: OffloadTimerRequest) -> TimerStep:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.CANCEL_SHELVE_OFFLOAD)
    async def cancel_shelve_offload(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.UNSHELVE_BEGIN)
    async def unshelve_begin(self, req: UnshelveRequest) -> UnshelvePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.UNSHELVE_DONE)
    async def unshelve_done(self, req: UnshelveEnd) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- evacuate, and the clean-up on the old host (activities/control/evacuate.py) ----
    @activity.defn(name=ControlActs.BEGIN_EVACUATION)
    async def begin_evacuation(self, req: EvacuateRequest) -> EvacuationPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.EVACUATION_STATUS)
    async def evacuation_status(self, req: MigrationStatus) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.END_EVACUATION)
    async def end_evacuation(self, req: EvacuationEnd) -> EvacuationEnded:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.EVACUATED_FROM)
    async def evacuated_from(self, ref: HostRef) -> EvacuatedGuests:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.EVACUATION_CLEANED)
    async def evacuation_cleaned(self, req: EvacuationCleaned) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- live migration ------------------------------------------------------------------
    @activity.defn(name=ControlActs.LIVE_MIGRATION_BEGIN)
    async def live_migration_begin(self, req: LiveMigrateRequest) -> LiveMigrationPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.CHECK_DESTINATION)
    async def check_destination(self, req: CheckDestination) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.MIGRATION_TARGET)
    async def migration_target(self, ref: InstanceHost) -> MigrationTarget:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.MIGRATION_UPDATE)
    async def migration_update(self, req: MigrationUpdate) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.LIVE_MIGRATION_DONE)
    async def live_migration_done(self, req: MigrationDone) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- resize and cold migration -------------------------------------------------------
    @activity.defn(name=ControlActs.BEGIN_RESIZE)
    async def begin_resize(self, req: ResizeRequest) -> ResizePlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.MOVE_CLAIM)
    async def move_claim(self, req: MoveClaim) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.FINISH_RESIZE)
    async def finish_resize(self, req: ResizeDone) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.PENDING_RESIZES)
    async def pending_resizes(self, ref: InstanceRef) -> PendingResizes:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.END_RESIZE)
    async def end_resize(self, req: ResizeEnd) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.CONFIRM_LEDGER)
    async def confirm_ledger(self, req: SourceCopy) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.START_AUTO_CONFIRM)
    async def start_auto_confirm(self, req: AutoConfirmRequest) -> TimerStep:
        raise NotImplementedError(RUNS_ON_THE_WORKER)
