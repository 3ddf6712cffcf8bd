"""What the share workflows share: storage steps on `storage.<host>`, the `status`
query, and the end of an operation (its Operation row finished with a readable
reason)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.instances import FinishOperation, LedgerEntries, LedgerEntry
    from vmflow.contracts.shares import (
        ShareErrors,
        SharePlan,
        ShareRef,
        ShareResize,
        ShareResizeOp,
        ShareUpdate,
    )
    from vmflow.contracts.storage_stub import StorageStub
    from vmflow.names import SA_HOST, storage_queue
    from vmflow.share_states import ShareStatus

from workflows._base.operation import RowOwner, to_the_end
from workflows._base.saga import Compensations
from workflows._base.steps import (
    Reporting,
    control,
    describe,
    error_type,
    not_picked_up,
    root_cause,
)

A = TypeVar("A")  # a storage activity's input
R = TypeVar("R")  # ... and its result, both read off StorageStub

# what a storage worker says when retrying cannot help (it changed nothing)
REFUSALS = [ShareErrors.SHRINK_BELOW_USED, ShareErrors.POOL_FULL, ShareErrors.NOT_FOUND]


async def on_storage(
    host: str,
    act: Callable[[StorageStub, A], Awaitable[R]],
    arg: A,
    *,
    schedule_to_start_s: float,
    timeout_s: float = 120,
    give_up_after_s: float = 600,
    attempts: int = 5,
    heartbeat_s: float = 10,
) -> R:
    """Run a step on the storage worker of `host`: `on_storage(host,
    StorageStub.create_share, spec, schedule_to_start_s=...)`. schedule_to_start_s bounds how
    long it may take to pick the step up, so a dead storage worker is noticed in
    seconds and the operation compensates instead of hanging. Every storage step
    heartbeats (activities/heartbeat.py), so a worker killed mid-step is retried
    after heartbeat_s, not after timeout_s. Undo steps pass attempts=0 (retry until
    give_up_after_s)."""
    return await workflow.execute_activity_method(
        act,
        arg,
        task_queue=storage_queue(host),
        schedule_to_start_timeout=timedelta(seconds=schedule_to_start_s),
        start_to_close_timeout=timedelta(seconds=timeout_s),
        schedule_to_close_timeout=timedelta(seconds=give_up_after_s),
        heartbeat_timeout=timedelta(seconds=heartbeat_s),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=20),
            maximum_attempts=attempts,
            non_retryable_error_types=[*Errors.ALL, *REFUSALS],
        ),
    )


def reason(err: BaseException, host: str) -> str:
    """The fault a user reads: a dead storage worker said in words, not as a timeout."""
    if not_picked_up(err):
        return f"the storage host {host} did not pick up the step (is its worker running?)"
    return describe(err)


def refused(err: BaseException) -> bool:
    """The storage worker refused the step (typed, non-retryable): nothing changed."""
    cause = root_cause(err)
    return getattr(cause, "type", None) in REFUSALS


class ShareWorkflow(Reporting, RowOwner):
    """Base of the share workflows: the `status` query the API reads, the plan."""

    async def plan(self, ref: ShareRef, host: str) -> SharePlan:
        self.at("starting", None, host)
        workflow.upsert_search_attributes([SA_HOST.value_set(host)])
        return await control(ControlStub.share_plan, ref)

    @staticmethod
    async def forget(host: str, kind: str, key: str) -> None:
        """A share's or snapshot's ledger entry (DESIGN decision 9), once the storage
        host holds nothing of it any more."""
        await control(ControlStub.ledger_forget, LedgerEntries([LedgerEntry(host, kind, key)]))

    async def finish(self, operation_id: str, status: str, error: str | None = None) -> None:
        if status == "succeeded":
            self.at("done", 100)
        await control(ControlStub.finish_operation, FinishOperation(operation_id, status, error))
        self.row_finished = True

    async def undo_and_fail(self, err: BaseException, undo: Compensations, host: str,
                            operation_id: str, what: str,
                            mark_error: Callable[[str], Awaitable[None]]) -> NoReturn:
        """A create that failed: undo what the storage host made, record the fault on
        the resource (`mark_error`) and the operation (compensated, or failed when the
        undo failed too), then fail the workflow with it; a cancel arriving meanwhile
        does not cut this short."""

        async def unwind() -> str:
            fault = reason(err, host)
            self.at("compensating")
            if await undo.run():
                fault += (f"; removing what the storage host made failed (deleting the {what} "
                          "retries it)")
                status = "failed"
            else:
                status = "compensated"
            await mark_error(fault)
            await self.finish(operation_id, status, fault)
            return fault

        fault = await to_the_end(unwind())
        raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err

    async def resize(self, op: ShareResizeOp, verb: str, during: ShareStatus,
                     stuck: ShareStatus) -> None:
        """Extend or shrink: `during` while the limit changes, then available with the
        new size; on failure available again with the old size and the fault (op
        compensated; failed if the storage host refused it), or `stuck`
        (extending_error/shrinking_error) when the old limit could not be set back."""
        try:
            plan = await self.plan(ShareRef(op.share_id), op.host)
        except Exception as err:  # e.g. the row is gone: nothing changed
            await self.finish(op.operation_id, "failed", reason(err, op.host))
            raise
        old, wait_s = plan.size_gb, plan.schedule_to_start_s
        await control(ControlStub.share_set, ShareUpdate(op.share_id, status=during))
        try:
            self.at(f"{verb} to {op.new_size_gb} GiB")
            await on_storage(op.host, StorageStub.resize_share,
                             ShareResize(op.share_id, op.new_size_gb), schedule_to_start_s=wait_s)
        except (Exception, asyncio.CancelledError) as err:
            fault = await to_the_end(self._resize_back(op, err, verb, old, wait_s, stuck))
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await to_the_end(self._resized(op))

    async def _resized(self, op: ShareResizeOp) -> None:
        await control(ControlStub.share_set, ShareUpdate(
            op.share_id, status=ShareStatus.AVAILABLE, size_gb=op.new_size_gb, clear_fault=True))
        await self.finish(op.operation_id, "succeeded")

    async def _resize_back(self, op: ShareResizeOp, err: BaseException, verb: str, old: int,
                           wait_s: float, stuck: ShareStatus) -> str:
        fault = f"{verb} to {op.new_size_gb} GiB failed: {reason(err, op.host)}"
        status = ShareStatus.AVAILABLE
        # a refusal changed nothing, and a step never picked up did not run; any
        # other failure may come after the new limit was set: set the old one back
        if not refused(err) and not not_picked_up(err):
            self.at("compensating")
            try:
                await on_storage(op.host, StorageStub.resize_share,
                                 ShareResize(op.share_id, old), schedule_to_start_s=wait_s,
                                 attempts=0, give_up_after_s=300)
            except Exception as undo_err:
                status = stuck
                fault += f"; setting the {old} GiB limit back failed: " \
                         f"{reason(undo_err, op.host)}"
        await control(ControlStub.share_set, ShareUpdate(
            op.share_id, status=status, size_gb=old, fault=fault))
        # back at the old size and available: compensated, as an instance action whose
        # undo put it back; a refusal is failed (the request was wrong), so is stuck
        back = status == ShareStatus.AVAILABLE and not refused(err)
        await self.finish(op.operation_id, "compensated" if back else "failed", fault)
        return fault
