"""AutoConfirmResize: a finished resize or cold migration waits
VMFLOW_RESIZE_CONFIRM_WINDOW seconds for confirm or revert; this is its timer, a
workflow of its own (auto-confirm-<instance>) beside `instance-<id>`, so the server
stays free for a confirm or revert by hand, which cancel it, as delete does.

When it runs out, its step starts confirm-resize as the API would (on behalf of who
asked for the move), unless the move ended meanwhile; a server busy with another
operation is asked again every minute for up to a day. Nova's equivalent
(resize_confirm_window) is off by default; vmflow's is on (one hour)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.resize import AutoConfirmRequest
    from vmflow.names import auto_confirm_workflow_id

from workflows._base.steps import control
from workflows._base.timer import start_later


@workflow.defn(name="AutoConfirmResize")
class AutoConfirmResize:
    @workflow.run
    async def run(self, req: AutoConfirmRequest) -> str:
        return await start_later(req.after_s, req.busy_retry_s, "confirm",
                                 lambda: control(ControlStub.start_auto_confirm, req))


async def cancel_auto_confirm(instance_id: str) -> None:
    """From confirm, revert and delete: the timer of the server's resize is no longer
    needed (none running, or it started this very confirm: nothing to do)."""
    try:
        await workflow.get_external_workflow_handle(auto_confirm_workflow_id(instance_id)).cancel()
    except Exception as err:
        workflow.logger.info("no auto-confirm timer of %s to cancel: %s", instance_id, err)
