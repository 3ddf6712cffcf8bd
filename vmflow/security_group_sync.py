"""Signal-with-start of a security group's sync to the hosts (SyncSecurityGroup on
`secgroup-<id>`, workflows/network/security_group_sync.py): by the API after a rule is
made or deleted and after a port joins or leaves a group. A running sync gets the
signal and does another round; otherwise one starts (no Operation row: the rules and
the ports are the record, and the reconciler catches up a host that missed one)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from temporalio.client import Client

from vmflow.contracts.security_groups import GROUP_CHANGED_SIGNAL, SecurityGroupSync
from vmflow.names import security_group_workflow_id
from vmflow.operations import OperationSpec, start_operation

SYNC_SECURITY_GROUP = "SyncSecurityGroup"


def _input(group_id: str, _operation_id: str) -> SecurityGroupSync:
    return SecurityGroupSync(group_id)


async def signal_group_sync(client: Client, group_ids: Iterable[str], project_id: str) -> None:
    for group_id in sorted(set(group_ids)):
        await start_operation(client, None, OperationSpec(
            resource_type="security_group", resource_id=group_id,
            resource=f"security group {group_id}", action="sync",
            workflow=SYNC_SECURITY_GROUP, workflow_id=security_group_workflow_id(group_id),
            project_id=project_id, user_id="",
            make_input=partial(_input, group_id),
            summary=f"rules of security group {group_id} to its ports' hosts",
            signal=GROUP_CHANGED_SIGNAL))
