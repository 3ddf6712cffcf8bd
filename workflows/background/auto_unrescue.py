"""AutoUnrescue: a rescue asked for `unrescue_after` seconds; this is its timer, a
workflow of its own beside `instance-<id>` so the instance stays free for other
operations (a manual unrescue included) while it waits.

When it runs out, its step starts an unrescue as the API would, on behalf of the user
who rescued, unless the server is gone, no longer rescued, rescued again since (that
rescue's timer decides) or locked; a server busy with another operation is asked
again every minute (busy_retry_s) for up to a day. The unrescue is an ordinary operation in the
action history."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import AutoUnrescueRequest
    from vmflow.contracts.control_stub import ControlStub

from workflows._base.steps import control

BUSY_FOR_AT_MOST = timedelta(days=1)


@workflow.defn(name="AutoUnrescue")
class AutoUnrescue:
    @workflow.run
    async def run(self, req: AutoUnrescueRequest) -> str:
        await workflow.sleep(timedelta(seconds=req.after_s))
        give_up = workflow.now() + BUSY_FOR_AT_MOST
        while True:
            step = await control(ControlStub.start_auto_unrescue, req)
            if not step.busy:
                return (f"unrescue started: operation {step.operation_id}"
                        if step.operation_id else f"nothing to do: {step.reason}")
            if workflow.now() >= give_up:
                return f"gave up: {step.reason}"
            await workflow.sleep(timedelta(seconds=req.busy_retry_s))
