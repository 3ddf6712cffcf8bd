"""An Operation row is finished on every way out of the workflow that owns it.

Temporal delivers a workflow's cancellation once, as asyncio.CancelledError at
whatever the workflow awaits at that moment. A cancel that lands before the first
step, or in the middle of compensation, would skip everything after that await,
finishing the row included. So:

- `to_the_end(step)`: compensation and finishing run as a task of their own, shielded:
  a cancel that arrives meanwhile does not cut them short (the caller is already on
  its way out, with its own error).
- `@owns_operation` (under `@workflow.run`): whatever still escapes the run finishes
  the row through control.settle_operation, which changes only a row that still runs
  (vmflow/operation_rows.py says how the resource is released).

Terminated and timed-out workflows run no code at all: the ledger reconciler settles
their rows (activities/control/operation_rows.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.reconcile import SettleOperation

from workflows._base.steps import control, describe

T = TypeVar("T")
CANCELS = 3  # Temporal delivers a cancel once; the loop is bounded all the same


async def to_the_end(step: Awaitable[T]) -> T:
    """Await `step` to its end even if the workflow is cancelled while it runs."""
    task = asyncio.ensure_future(step)
    for _ in range(CANCELS):
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            workflow.logger.info("cancel requested while the operation ends: ending it first")
    return await task


class HasOperation(Protocol):
    operation_id: str


class RowOwner:
    """A workflow that finished its own row says so, and the safety net stays idle."""

    row_finished = False

    async def settle_row(self, operation_id: str, status: str, error: str) -> None:
        await control(ControlStub.settle_operation, SettleOperation(operation_id, status, error))
        self.row_finished = True


Run = Callable[[Any, Any], Awaitable[Any]]
R = TypeVar("R", bound=Run)


def owns_operation(run: R) -> R:
    """The run of a workflow whose input names its Operation row (`operation_id`):
    anything escaping it finishes the row as failed with a readable fault, unless the
    workflow finished the row itself."""

    async def guarded(self: RowOwner, req: HasOperation) -> Any:
        try:
            return await run(self, req)
        except (Exception, asyncio.CancelledError) as err:
            if not getattr(self, "row_finished", False):
                await to_the_end(RowOwner.settle_row(self, req.operation_id, "failed",
                                                     describe(err)))
            raise

    # what functools.wraps copies: Temporal reads the run's name and argument types
    for name in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__"):
        setattr(guarded, name, getattr(run, name))
    guarded.__wrapped__ = run  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]
