"""Signal-with-start of a share's access-rule reconcile (SyncShareAccess on
`share-<id>-access`): by the API after each allow/deny, and by the ledger reconciler
for rules that a lost signal or a dead run left in flight. A running reconcile gets
the signal and picks the rules up; otherwise one starts (vmflow.operations: no
Operation row, the rules themselves are the record)."""

from __future__ import annotations

from temporalio.client import Client

from vmflow.contracts.shares import RULES_CHANGED_SIGNAL, ShareAccessSync
from vmflow.names import share_access_workflow_id, share_workflow_id
from vmflow.operations import OperationSpec, start_operation

SYNC_SHARE_ACCESS = "SyncShareAccess"


async def signal_access_sync(client: Client, share_id: str, project_id: str,
                             host: str) -> None:
    await start_operation(client, None, OperationSpec(
        resource_type="share", resource_id=share_id, resource=f"share {share_id}",
        action="access_sync", workflow=SYNC_SHARE_ACCESS,
        workflow_id=share_access_workflow_id(share_id), project_id=project_id, user_id="",
        make_input=lambda _op_id: ShareAccessSync(share_id, host),
        summary=f"access rules of share {share_id}",
        attributes_of=share_workflow_id(share_id), signal=RULES_CHANGED_SIGNAL))
