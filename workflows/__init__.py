"""Workflows: one module per operation; deterministic, no I/O."""

from workflows.auto_unrescue import AutoUnrescue
from workflows.delete import DeleteInstance
from workflows.launch import LaunchInstance
from workflows.pause import PauseInstance
from workflows.power_sync import PowerSync
from workflows.reboot import RebootInstance
from workflows.rebuild import RebuildInstance
from workflows.reconcile_ledger import ReconcileLedger
from workflows.register_host import RegisterHost
from workflows.rescue import RescueInstance
from workflows.resume import ResumeInstance
from workflows.scheduled_backup import ScheduledBackup
from workflows.snapshot import SnapshotInstance
from workflows.start import StartInstance
from workflows.stop import StopInstance
from workflows.suspend import SuspendInstance
from workflows.unpause import UnpauseInstance
from workflows.unrescue import UnrescueInstance

ALL = [
    LaunchInstance, DeleteInstance, RegisterHost, StartInstance, StopInstance, RebootInstance,
    PauseInstance, UnpauseInstance, SuspendInstance, ResumeInstance, RescueInstance,
    UnrescueInstance, PowerSync, RebuildInstance, SnapshotInstance,
    ScheduledBackup, ReconcileLedger, AutoUnrescue,
]
