"""Signal-with-start of a floating IP's host-side sync (SyncFloatingIp on
`floatingip-<id>`): by the API after each associate, disassociate and release. A
running sync gets the signal and reads the row again; otherwise one starts
(vmflow.operations: no Operation row, the floating IP's row is the record)."""

from __future__ import annotations

from temporalio.client import Client

from vmflow.contracts.networks import FLOATING_IP_CHANGED_SIGNAL, FloatingIpSync
from vmflow.names import floating_ip_workflow_id
from vmflow.operations import OperationSpec, start_operation

SYNC_FLOATING_IP = "SyncFloatingIp"


async def signal_floating_ip_sync(client: Client, fip_id: str, address: str,
                                  project_id: str, action: str) -> None:
    await start_operation(client, None, OperationSpec(
        resource_type="floatingip", resource_id=fip_id, resource=f"floating IP {fip_id}",
        action=action, workflow=SYNC_FLOATING_IP,
        workflow_id=floating_ip_workflow_id(fip_id), project_id=project_id, user_id="",
        make_input=lambda _op_id: FloatingIpSync(fip_id, address),
        summary=f"floating IP {fip_id}", signal=FLOATING_IP_CHANGED_SIGNAL))
