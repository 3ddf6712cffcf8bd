"""Launch: validate → ports (then the plan again, so the config drive lists them) →
schedule → claim → fetch images → disk → plug the ports on the host, publish its
metadata → define → NAT its floating IPs → start → wait for the agent → ACTIVE. Each
step pushes its undo before it runs; any failure or cancellation undoes everything
and leaves the server in ERROR with a fault."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.instances import (
        FinishOperation,
        InstanceRef,
        InstanceUpdate,
        OperationRef,
    )
    from vmflow.states import TRANSITIONS, VmState

from workflows._base.operation import RowOwner, owns_operation, to_the_end
from workflows._base.ports import PATCH, groups_of, refresh_members
from workflows._base.saga import Compensations
from workflows._base.spawn import Spawning
from workflows._base.steps import control, describe, error_type


@workflow.defn(name="LaunchInstance")
class LaunchInstance(Spawning, RowOwner):
    def __init__(self) -> None:
        super().__init__("validating")

    @workflow.run
    @owns_operation
    async def run(self, ref: OperationRef) -> str:
        undo = Compensations()
        try:
            plan = await control(ControlStub.validate_launch, ref)
            workflow.deprecate_patch(PATCH)
            await self._make_ports(ref, undo)
            # the plan again, now that the ports exist: the config drive's
            # network_data.json lists them
            workflow.deprecate_patch("launch-drive-after-ports")
            plan = await control(ControlStub.validate_launch, ref)
            host, images = await self.place_and_fetch(plan, undo)
            await self.spawn(plan, host, images, undo)
            # its groups' other members now let its addresses in
            self.at("updating its security groups' members")
            await refresh_members(await groups_of(ref.instance_id))
        except (Exception, asyncio.CancelledError) as err:
            await to_the_end(self._compensate(ref, err, undo))
            raise ApplicationError(describe(err), type=error_type(err), non_retryable=True) from err
        await to_the_end(self._succeed(ref))
        return host

    async def _make_ports(self, ref: OperationRef, undo: Compensations) -> None:
        """The NICs the launch asked for as ports, before a host is chosen: an
        exhausted pool fails the launch before anything else is done. Undo: ports it
        made deleted, given ones unbound (the last undo, after the host's side)."""
        inst = InstanceRef(ref.instance_id)
        self.at("creating ports")
        undo.push("port rows", lambda: control(ControlStub.release_instance_ports, inst))
        await control(ControlStub.create_instance_ports, inst)

    async def _succeed(self, ref: OperationRef) -> None:
        self.at("done", 100)
        await control(ControlStub.update_instance,
                      InstanceUpdate(ref.instance_id, vm_state=TRANSITIONS["create"].target,
                                     clear_task_state=True))
        await control(ControlStub.finish_operation, FinishOperation(ref.operation_id, "succeeded"))
        self.row_finished = True

    async def _compensate(self, ref: OperationRef, err: BaseException, undo: Compensations) -> None:
        self.at("compensating")
        failed = await undo.run()
        fault = describe(err)
        if failed:
            fault += f" (cleanup of {', '.join(failed)} failed; deleting the server retries it)"
        await control(ControlStub.update_instance, InstanceUpdate(
            ref.instance_id, vm_state=VmState.ERROR, clear_task_state=True, clear_host=not failed,
            fault=fault))
        await control(ControlStub.finish_operation, FinishOperation(
            ref.operation_id, "failed" if failed else "compensated", fault))
        self.row_finished = True
