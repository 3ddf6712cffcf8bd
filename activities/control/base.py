"""The bases of the control plane's database activities: the settings and a short
session on the configured engine for each call; for some, the Temporal client too."""

from __future__ import annotations

from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from vmflow import db
from vmflow.models import Operation
from vmflow.operations import RPC_TIMEOUT
from vmflow.settings import Settings


class DbActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def session(self) -> Session:
        return Session(db.engine_for(self.settings.db_url), expire_on_commit=False)


class ClientActivities(DbActivities):
    """Database activities that also ask Temporal (describe, start, signal)."""

    def __init__(self, settings: Settings, client: Client):
        super().__init__(settings)
        self.client = client

    async def started(self, op: Operation) -> bool:
        """Whether the workflow holding op's workflow id is the one started for `op`
        (its memo): a timer's step asks before it starts the operation again."""
        try:
            desc = await self.client.get_workflow_handle(op.workflow_id).describe(
                rpc_timeout=RPC_TIMEOUT)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return bool(await desc.memo_value("operation_id", None) == op.id)
