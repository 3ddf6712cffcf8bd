"""Names other processes rely on: task queues, workflow ids, search attributes."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

CONTROL_QUEUE = "control"

SA_RESOURCE = SearchAttributeKey.for_keyword("VmflowResource")
SA_PROJECT = SearchAttributeKey.for_keyword("VmflowProject")
SA_OPERATION = SearchAttributeKey.for_keyword("VmflowOperation")
SA_HOST = SearchAttributeKey.for_keyword("VmflowHost")
SEARCH_ATTRIBUTES = (SA_RESOURCE, SA_PROJECT, SA_OPERATION, SA_HOST)


def operation_attributes(resource: str, project_id: str, action: str) -> TypedSearchAttributes:
    """What the Web UI finds an operation's workflow by: the workflow id of the resource
    it works on (instance-<id>, share-<id>), the project, the action."""
    return TypedSearchAttributes([
        SearchAttributePair(SA_RESOURCE, resource),
        SearchAttributePair(SA_PROJECT, project_id),
        SearchAttributePair(SA_OPERATION, action),
    ])


def hv_queue(host: str) -> str:
    return f"hv.{host}"


def storage_queue(host: str) -> str:
    return f"storage.{host}"


def instance_workflow_id(instance_id: str) -> str:
    """One mutating workflow per instance at a time: Temporal is the mutex."""
    return f"instance-{instance_id}"


def auto_unrescue_workflow_id(instance_id: str, rescue_operation_id: str) -> str:
    """A rescue's timer: beside the instance's workflow id, never holding it."""
    return f"auto-unrescue-{instance_id}-{rescue_operation_id}"


def shelve_offload_workflow_id(instance_id: str, shelve_operation_id: str) -> str:
    """The offload timer a shelve arms (VMFLOW_SHELVED_OFFLOAD_TIME > 0)."""
    return f"shelve-offload-{instance_id}-{shelve_operation_id}"


def auto_confirm_workflow_id(instance_id: str) -> str:
    """A finished resize's timer (one at a time per instance): confirm, revert and
    delete cancel it by this id."""
    return f"auto-confirm-{instance_id}"


def host_workflow_id(host: str) -> str:
    return f"host-register-{host}"


def domain_name(prefix: str, instance_id: str) -> str:
    return f"{prefix}{instance_id}"


POWER_SYNC_SCHEDULE = "reconcile-power-states"
# the ledger reconciler (DESIGN decision 9): orphans of gone instances on the hosts
LEDGER_RECONCILE_SCHEDULE = "reconcile-ledger"


def backup_schedule_id(instance_id: str, schedule_id: str) -> str:
    """The Temporal Schedule of a backup schedule; its workflows' ids start with it
    (Temporal appends the scheduled time)."""
    return f"backup-{instance_id}-{schedule_id}"


def share_workflow_id(share_id: str) -> str:
    """One mutating workflow per share at a time (create, delete, extend, shrink,
    snapshot create/delete): Temporal is the mutex."""
    return f"share-{share_id}"


def share_access_workflow_id(share_id: str) -> str:
    """The access-rule reconcile of a share: allow/deny requests queue on it."""
    return f"share-{share_id}-access"


def floating_ip_workflow_id(fip_id: str) -> str:
    """The host-side sync of a floating IP: associate/disassociate/release queue on it."""
    return f"floatingip-{fip_id}"


def security_group_workflow_id(group_id: str) -> str:
    """A security group's sync to the hosts: its changes queue on it."""
    return f"secgroup-{group_id}"
