"""unshelve: a shelved server (still on its host) is powered on and its agent waited
for; an offloaded one is placed like a launch (capacity first, claim, rescheduling;
an admin may name the host), its shelve image fetched to that host and spawned with
launch's own steps (workflows/_base/spawn.py). Only once the guest runs is the shelve
image deleted and the server ACTIVE (control.unshelve_done, one transaction), and the
offload timer of its shelve cancelled.

Failure or cancellation runs the undos beside each step (power off; or the domain,
disk and claim on the chosen host) and leaves the server as it was, SHELVED or
SHELVED_OFFLOADED, with a readable fault (NoValidHost names every host and why) and
the image kept; the operation row says compensated. Only an undo that failed leaves
ERROR (delete retries the cleanup)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import WaitAgent
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import FinishOperation, InstanceRef, InstanceUpdate
    from vmflow.contracts.shelve import UnshelveEnd, UnshelvePlan, UnshelveRequest
    from vmflow.names import SA_HOST
    from vmflow.states import VmState

from workflows._base.operation import RowOwner, owns_operation, to_the_end
from workflows._base.saga import Compensations
from workflows._base.spawn import Spawning
from workflows._base.steps import control, describe, error_type, on_host


@workflow.defn(name="UnshelveInstance")
class UnshelveInstance(Spawning, RowOwner):
    def __init__(self) -> None:
        super().__init__("starting")

    @workflow.run
    @owns_operation
    async def run(self, req: UnshelveRequest) -> str:
        undo = Compensations()
        plan: UnshelvePlan | None = None
        try:
            plan = await control(ControlStub.unshelve_begin, req)
            if plan.launch is None:
                assert plan.host is not None  # unshelve_begin refuses a shelved one without
                host = plan.host
                await self._power_on(plan, host, undo)
            else:
                host, images = await self.place_and_fetch(plan.launch, undo, req.host)
                await self.spawn(plan.launch, host, images, undo)
        except (Exception, asyncio.CancelledError) as err:
            fault = await to_the_end(self._compensate(req, plan, err, undo))
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await to_the_end(self._succeed(req, host))
        return host

    async def _power_on(self, plan: UnshelvePlan, host: str, undo: Compensations) -> None:
        ref = InstanceRef(plan.instance_id)
        self.at("powering on", None, host)
        workflow.upsert_search_attributes([SA_HOST.value_set(host)])
        undo.push("power on", lambda: on_host(host, HostStub.power_off, ref, attempts=0))
        await on_host(host, HostStub.power_on, ref)
        if plan.agent:
            self.at("waiting for the guest agent")
            deadline = workflow.now().timestamp() + plan.agent_timeout_s
            await on_host(host, HostStub.wait_agent, WaitAgent(plan.instance_id, deadline),
                          heartbeat_s=10, timeout_s=plan.agent_timeout_s + 30,
                          give_up_after_s=plan.agent_timeout_s * 3)

    async def _succeed(self, req: UnshelveRequest, host: str) -> None:
        self.at("done", 100)
        await control(ControlStub.unshelve_done,
                      UnshelveEnd(req.instance_id, req.operation_id, host))
        self.row_finished = True
        await control(ControlStub.cancel_shelve_offload, InstanceRef(req.instance_id))

    async def _compensate(self, req: UnshelveRequest, plan: UnshelvePlan | None,
                          err: BaseException, undo: Compensations) -> str:
        self.at("compensating")
        fault = describe(err)
        cancelled = error_type(err) == "Cancelled"
        if plan is None:  # refused or cancelled before it began: nothing changed
            await self.settle_row(req.operation_id,
                                  "compensated" if cancelled else "failed", fault)
            return fault
        failed = await undo.run()
        if failed:
            fault += f" (undo of {', '.join(failed)} failed; deleting the server retries it)"
        offloaded = plan.vm_state == VmState.SHELVED_OFFLOADED
        await control(ControlStub.update_instance, InstanceUpdate(
            req.instance_id, vm_state=VmState.ERROR if failed else plan.vm_state,
            clear_task_state=True, clear_host=offloaded and not failed, fault=fault))
        await control(ControlStub.finish_operation, FinishOperation(
            req.operation_id, "failed" if failed else "compensated", fault))
        self.row_finished = True
        return fault
