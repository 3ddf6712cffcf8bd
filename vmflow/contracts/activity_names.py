"""The names of the control and host activities: the single source of each name, used
by the real activities and by the typed stubs workflows call (control_stub.py,
host_stub.py)."""

from __future__ import annotations


class ControlActs:
    VALIDATE_LAUNCH = "control.validate_launch"
    SCHEDULE = "control.schedule"
    CLAIM = "control.claim"
    RELEASE_CLAIM = "control.release_claim"
    LEDGER_RECORD = "control.ledger_record"
    LEDGER_FORGET = "control.ledger_forget"
    LEDGER_FORGET_INSTANCE = "control.ledger_forget_instance"
    UPDATE_INSTANCE = "control.update_instance"
    FINISH_OPERATION = "control.finish_operation"
    BEGIN_DELETE = "control.begin_delete"
    REGISTER_HOST = "control.register_host"
    START_SCHEDULED_BACKUP = "control.start_scheduled_backup"  # a backup schedule's tick
    AWAIT_OPERATION = "control.await_operation"  # until an instance workflow closes
    START_AUTO_UNRESCUE = "control.start_auto_unrescue"  # a rescue's timer ran out
    DELETE_BACKUP_SCHEDULES = "control.delete_backup_schedules"  # delete: the timetables
    BEGIN_ACTION = "control.begin_action"
    END_ACTION = "control.end_action"
    SYNC_CANDIDATES = "control.power_sync_candidates"
    SYNC_APPLY = "control.power_sync_apply"
    SNAPSHOT_BEGIN = "control.snapshot_begin"  # createImage/createBackup: image queued?
    SNAPSHOT_DONE = "control.snapshot_done"  # image active with its consistency
    SNAPSHOT_FAILED = "control.snapshot_failed"  # image error with the reason
    ROTATE_BACKUPS = "control.rotate_backups"
    SET_IMAGE = "control.set_instance_image"  # rebuild: the new image, once it booted
    RECONCILE_HOSTS = "control.reconcile_hosts"  # ledger reconciler: the hosts to look at
    RECONCILE_PLAN = "control.reconcile_plan"  # ... one host's listing against ledger and DB
    RECONCILE_STORAGE_HOSTS = "control.reconcile_storage_hosts"  # ... the storage hosts
    RECONCILE_SHARES = "control.reconcile_shares"  # ... one storage host's shares and snapshots
    RESYNC_SHARE_ACCESS = "control.resync_share_access"  # ... rules left in flight
    RECONCILE_IMAGE_STORE = "control.reconcile_image_store"  # ... and the image store's files
    SETTLE_OPERATION = "control.settle_operation"  # a row its own workflow left running
    SETTLE_CLOSED = "control.settle_closed_operations"  # ... rows of closed workflows
    # shelve and unshelve (activities/control/shelve.py)
    SHELVE_IMAGE = "control.shelve_image"  # the queued <name>-shelved image record
    SHELVE_DONE = "control.shelve_done"  # the instance names its shelve image
    SHELVE_DISCARD = "control.shelve_discard_image"  # undo: that image deleted
    SHELVE_FORGET = "control.shelve_forget"  # delete: the recorded shelve image deleted
    START_SHELVE_OFFLOAD = "control.start_shelve_offload"  # the offload timer ran out
    CANCEL_SHELVE_OFFLOAD = "control.cancel_shelve_offload"  # unshelve/delete: no timer
    UNSHELVE_BEGIN = "control.unshelve_begin"
    UNSHELVE_DONE = "control.unshelve_done"  # active, and the shelve image deleted
    # evacuate (activities/control/evacuate.py) and the clean-up on the old host
    BEGIN_EVACUATION = "control.begin_evacuation"  # the checks again, the Migration row
    EVACUATION_STATUS = "control.evacuation_status"  # the row's status and destination
    END_EVACUATION = "control.end_evacuation"  # server, operation and row together
    EVACUATED_FROM = "control.evacuated_from"  # done evacuations away from a host
    EVACUATION_CLEANED = "control.evacuation_cleaned"  # its old copy gone: completed
    # live migration (workflows/instance/live_migrate.py)
    LIVE_MIGRATION_BEGIN = "control.live_migration_begin"  # the Migration row and the plan
    CHECK_DESTINATION = "control.check_destination"  # an admin's chosen host
    MIGRATION_TARGET = "control.migration_target"  # the destination's migration URI
    MIGRATION_UPDATE = "control.migration_update"  # the row's status, host, progress
    LIVE_MIGRATION_DONE = "control.live_migration_done"  # host, claims, ledger follow
    # resize and cold migration (activities/control/resize.py)
    BEGIN_RESIZE = "control.begin_resize"  # the Migration row and the move's plan
    MOVE_CLAIM = "control.move_claim"  # an allocation to another consumer
    FINISH_RESIZE = "control.finish_resize"  # VERIFY_RESIZE on the destination
    PENDING_RESIZES = "control.pending_resizes"  # moves waiting for confirm or revert
    END_RESIZE = "control.end_resize"  # confirmed or reverted
    CONFIRM_LEDGER = "control.confirm_ledger"  # confirm: one copy's ledger rows
    START_AUTO_CONFIRM = "control.start_auto_confirm"  # a resize's timer ran out
    # floating IPs (activities/control/floating_ips.py)
    FLOATING_IP_PLAN = "control.floating_ip_plan"  # where the NAT belongs, hosts to clear
    FLOATING_IP_STATUS = "control.floating_ip_status"  # ACTIVE | DOWN, if still current
    INSTANCE_FLOATING_IPS = "control.instance_floating_ips"  # of the instance's ports
    # security groups and the reconciler's network pass (activities/control/port_rules.py,
    # network_reconcile.py)
    SECURITY_GROUP_PLAN = "control.security_group_plan"  # ports a group's change touches
    RECONCILE_NETWORKS = "control.reconcile_networks"  # one host's networks vs the DB
    # the metadata service (activities/control/metadata_docs.py)
    INSTANCE_METADATA = "control.instance_metadata"  # the documents of each of its ports
    # a server's ports (activities/control/ports.py)
    CREATE_INSTANCE_PORTS = "control.create_instance_ports"  # the launch's NICs as ports
    RELEASE_INSTANCE_PORTS = "control.release_instance_ports"  # made: deleted; given: unbound
    INSTANCE_NETWORKING = "control.instance_networking"  # networks, ports, NICs for a host
    BIND_INSTANCE_PORTS = "control.bind_instance_ports"  # ACTIVE on a host, or DOWN
    INSTANCE_GROUPS = "control.instance_groups"  # the security groups of its ports
    REMOTE_GROUP_PORTS = "control.remote_group_ports"  # ports whose rules name them
    # interface attach/detach (activities/control/interface_ports.py)
    ATTACH_INSTANCE_PORT = "control.attach_instance_port"  # one port made or bound, its NIC row
    RELEASE_INSTANCE_PORT = "control.release_instance_port"  # that port deleted or unbound


class HostActs:
    FETCH_IMAGE = "host.fetch_image"
    CREATE_DISK = "host.create_disk"
    DELETE_DISKS = "host.delete_instance_files"
    DEFINE_DOMAIN = "host.define_domain"
    START_DOMAIN = "host.start_domain"
    WAIT_AGENT = "host.wait_agent"
    DESTROY_DOMAIN = "host.destroy_domain"
    OBSERVE = "host.observe"
    OBSERVE_MANY = "host.observe_many"
    POWER_ON = "host.power_on"
    POWER_OFF = "host.power_off"
    SHUTDOWN = "host.shutdown"
    PAUSE = "host.pause"
    UNPAUSE = "host.unpause"
    MANAGED_SAVE = "host.managed_save"
    RESCUE = "host.rescue"
    UNRESCUE = "host.unrescue"
    CONFIG_DRIVE = "host.create_config_drive"
    SNAPSHOT_DISK = "host.snapshot_disk"
    UPLOAD_SNAPSHOT = "host.upload_snapshot"
    DISCARD_SNAPSHOT = "host.discard_snapshot"
    PREPARE_REBUILD = "host.prepare_rebuild"
    SWAP_IN_REBUILD = "host.swap_in_rebuild"
    COMMIT_REBUILD = "host.commit_rebuild"
    RESTORE_OLD_DISK = "host.restore_old_disk"
    LIST_RESOURCES = "host.list_instance_resources"  # ledger reconciler: domains and dirs
    PREPARE_LIVE_MIGRATION = "host.prepare_live_migration"  # destination: files, no domain
    WATCH_INCOMING = "host.watch_incoming"  # destination: heartbeats while it comes in
    INCOMING_TOTALS = "host.incoming_migration_totals"  # destination: the completed job
    LIVE_MIGRATE = "host.live_migrate"  # source: migrateToURI3, progress as heartbeats
    FORCE_COMPLETE_MIGRATION = "host.force_complete_migration"  # source: pause to converge
    # resize and cold migration: the source's copy and the destination's pull
    SET_ASIDE = "host.resize_set_aside"
    EXPORT_FILES = "host.resize_export_files"
    UNEXPORT_FILES = "host.resize_unexport_files"
    RESTORE_SOURCE = "host.resize_restore_source"
    DROP_SOURCE = "host.resize_drop_source"
    PULL_FILES = "host.resize_pull_files"
    DISCARD_INCOMING = "host.resize_discard_incoming"
    # guest networks (activities/hypervisor/network/)
    ENSURE_NETWORK = "host.ensure_network"  # bridge, vxlan to the peers, DHCP server
    REMOVE_NETWORK = "host.remove_network"  # ... all gone, leases included
    ENSURE_PORT = "host.ensure_port"  # the port's address reserved for its MAC
    REMOVE_PORT = "host.remove_port"  # ... and its lease dropped
    ATTACH_PORT = "host.attach_port"  # a NIC on the port's network (live and config)
    DETACH_PORT = "host.detach_port"
    LIST_NETWORKS = "host.list_networks"  # the reconciler's view of this host's networks
    # floating IPs (activities/hypervisor/network/floating.py)
    ENSURE_FLOATING_IP = "host.ensure_floating_ip"  # address on the external link, 1:1 NAT
    REMOVE_FLOATING_IP = "host.remove_floating_ip"  # ... gone, its connections flushed
    LIST_FLOATING_IPS = "host.list_floating_ips"  # the reconciler's view
    # the metadata service (activities/hypervisor/network/metadata.py)
    ENSURE_METADATA_ROUTE = "host.ensure_metadata_route"  # redirect rule, server listening
    PUBLISH_METADATA = "host.publish_metadata"  # a port's documents served to its address
    WITHDRAW_METADATA = "host.withdraw_metadata"  # ... gone (if still the instance's)
