"""ShelveOffloadTimer: a shelve with VMFLOW_SHELVED_OFFLOAD_TIME=N > 0 arms this timer,
a workflow of its own beside `instance-<id>`, so the shelved server stays free for
other operations (an unshelve or a shelveOffload by hand) while it waits. Unshelve and
delete cancel it (control.cancel_shelve_offload).

When it runs out, its step starts a shelve-offload as the API would, unless the
server is gone, no longer shelved or shelved again since; a server busy with another
operation is asked again every minute (busy_retry_s) for up to a day. The offload is an
ordinary operation in the action history."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.shelve import OffloadTimerRequest

from workflows._base.steps import control
from workflows._base.timer import start_later


@workflow.defn(name="ShelveOffloadTimer")
class ShelveOffloadTimer:
    @workflow.run
    async def run(self, req: OffloadTimerRequest) -> str:
        return await start_later(req.after_s, req.busy_retry_s, "shelve-offload",
                                 lambda: control(ControlStub.start_shelve_offload, req))
