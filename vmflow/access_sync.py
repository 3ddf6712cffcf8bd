"""Signal-with-start of a share's access-rule reconcile (SyncShareAccess on
`share-<id>-access`): by the API after each allow/deny, and by the ledger reconciler
for rules that a lost signal or a dead run left in flight. A running reconcile gets
the signal and picks the rules up; otherwise one starts."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from vmflow.contracts.shares import RULES_CHANGED_SIGNAL, ShareAccessSync
from vmflow.names import (
    CONTROL_QUEUE,
    operation_attributes,
    share_access_workflow_id,
    share_workflow_id,
)

SYNC_SHARE_ACCESS = "SyncShareAccess"


async def signal_access_sync(client: Client, share_id: str, project_id: str, host: str,
                             rpc_timeout: timedelta) -> None:
    await client.start_workflow(
        SYNC_SHARE_ACCESS, ShareAccessSync(share_id, host),
        id=share_access_workflow_id(share_id), task_queue=CONTROL_QUEUE,
        start_signal=RULES_CHANGED_SIGNAL,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=operation_attributes(share_workflow_id(share_id), project_id,
                                               "access_sync"),
        static_summary=f"access rules of share {share_id}", rpc_timeout=rpc_timeout)
