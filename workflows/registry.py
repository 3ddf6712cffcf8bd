"""Every workflow class vmflow runs: the control worker registers exactly these."""

from workflows.background.auto_confirm import AutoConfirmResize
from workflows.background.auto_unrescue import AutoUnrescue
from workflows.background.power_sync import PowerSync
from workflows.background.reconcile_ledger import ReconcileLedger
from workflows.background.register_host import RegisterHost
from workflows.background.scheduled_backup import ScheduledBackup
from workflows.background.shelve_offload_timer import ShelveOffloadTimer
from workflows.instance.attach_interface import AttachInterface
from workflows.instance.confirm_resize import ConfirmResize
from workflows.instance.delete import DeleteInstance
from workflows.instance.detach_interface import DetachInterface
from workflows.instance.evacuate import EvacuateInstance
from workflows.instance.launch import LaunchInstance
from workflows.instance.live_migrate import LiveMigrateInstance
from workflows.instance.pause import PauseInstance
from workflows.instance.reboot import RebootInstance
from workflows.instance.rebuild import RebuildInstance
from workflows.instance.rescue import RescueInstance
from workflows.instance.resize import ResizeInstance
from workflows.instance.resume import ResumeInstance
from workflows.instance.revert_resize import RevertResize
from workflows.instance.shelve import ShelveInstance
from workflows.instance.shelve_offload import ShelveOffloadInstance
from workflows.instance.snapshot import SnapshotInstance
from workflows.instance.start import StartInstance
from workflows.instance.stop import StopInstance
from workflows.instance.suspend import SuspendInstance
from workflows.instance.unpause import UnpauseInstance
from workflows.instance.unrescue import UnrescueInstance
from workflows.instance.unshelve import UnshelveInstance
from workflows.network.floating_ip_sync import SyncFloatingIp
from workflows.network.security_group_sync import SyncSecurityGroup
from workflows.share.access import SyncShareAccess
from workflows.share.create import CreateShare
from workflows.share.delete import DeleteShare
from workflows.share.extend import ExtendShare
from workflows.share.shrink import ShrinkShare
from workflows.share.snapshot_create import CreateShareSnapshot
from workflows.share.snapshot_delete import DeleteShareSnapshot

INSTANCE = [
    LaunchInstance, DeleteInstance, StartInstance, StopInstance, RebootInstance,
    PauseInstance, UnpauseInstance, SuspendInstance, ResumeInstance, RescueInstance,
    UnrescueInstance, RebuildInstance, SnapshotInstance, ShelveInstance,
    ShelveOffloadInstance, UnshelveInstance, EvacuateInstance, LiveMigrateInstance,
    ResizeInstance, ConfirmResize, RevertResize, AttachInterface, DetachInterface,
]
SHARE = [CreateShare, DeleteShare, ExtendShare, ShrinkShare, SyncShareAccess,
         CreateShareSnapshot, DeleteShareSnapshot]
BACKGROUND = [RegisterHost, PowerSync, ScheduledBackup, ReconcileLedger, AutoUnrescue,
              ShelveOffloadTimer, AutoConfirmResize]

NETWORK = [SyncFloatingIp, SyncSecurityGroup]

ALL = [*INSTANCE, *SHARE, *BACKGROUND, *NETWORK]
