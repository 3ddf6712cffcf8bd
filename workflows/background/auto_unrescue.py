"""AutoUnrescue: a rescue asked for `unrescue_after` seconds; this is its timer, a
workflow of its own beside `instance-<id>` so the instance stays free for other
operations (a manual unrescue included) while it waits.

When it runs out, its step starts an unrescue as the API would, on behalf of the user
who rescued, unless the server is gone, no longer rescued, rescued again since (that
rescue's timer decides) or locked; a server busy with another operation is asked
again every minute (busy_retry_s) for up to a day. The unrescue is an ordinary operation in the
action history."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import AutoUnrescueRequest
    from vmflow.contracts.control_stub import ControlStub

from workflows._base.steps import control
from workflows._base.timer import start_later


@workflow.defn(name="AutoUnrescue")
class AutoUnrescue:
    @workflow.run
    async def run(self, req: AutoUnrescueRequest) -> str:
        return await start_later(req.after_s, req.busy_retry_s, "unrescue",
                                 lambda: control(ControlStub.start_auto_unrescue, req))
