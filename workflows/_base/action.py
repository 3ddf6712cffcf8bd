"""The frame every instance action shares: claim the task state, run the body,
then settle the instance on the state it really reached. On failure or
cancellation the body's undos run first, then the real domain state on the host
decides the vm_state (DESIGN 6), so a step that physically succeeded is never
recorded as something worse."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import ActionEnd, ActionStart, InstanceFacts, WaitAgent
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceRef
    from vmflow.states import VmState

from workflows._base.operation import RowOwner, to_the_end
from workflows._base.saga import Compensations
from workflows._base.steps import Reporting, control, describe, error_type, on_host

# the body returns a note for the action history (e.g. "escalated to hard"), or None
Body = Callable[[InstanceFacts, Compensations], Awaitable[str | None]]
# a host step whose only input is the instance (power_on, pause, unrescue, ...)
InstanceStep = Callable[[HostStub, InstanceRef], Awaitable[None]]


class InstanceAction(Reporting, RowOwner):
    """Base for action workflows: the `status` query and the shared run frame."""

    async def run_action(self, start: ActionStart, target: str | None, body: Body,
                         on_failure: Callable[[str], Awaitable[None]] | None = None) -> None:
        """target: the vm_state on success; None: the state the domain really reached
        (an action whose end state depends on where it began, e.g. rebuild).
        on_failure: records the fault elsewhere (a snapshot's image) before the
        operation ends, so whoever sees the operation end sees that too.
        The operation row is finished on every way out, a cancel included, wherever it
        lands (workflows/_base/operation.py)."""
        facts: InstanceFacts | None = None
        undo = Compensations()
        try:
            facts = await control(ControlStub.begin_action, start)
            self.at("starting", None, facts.host)
            note = await body(facts, undo)
        except (Exception, asyncio.CancelledError) as err:
            fault = await to_the_end(self._unwind(start, facts, undo, err, on_failure))
            raise ApplicationError(fault, type=error_type(err), non_retryable=True) from err
        await to_the_end(self._succeed(start, facts, target, note))

    async def _unwind(self, start: ActionStart, facts: InstanceFacts | None,
                      undo: Compensations, err: BaseException,
                      on_failure: Callable[[str], Awaitable[None]] | None) -> str:
        """Undo, then record the state the domain really reached; an action that never
        began (refused, or cancelled before its first step) changed nothing: its row
        ends and the instance keeps its vm_state, without a task_state."""
        self.at("compensating")
        if facts is None:
            fault = describe(err)
            if on_failure:
                await on_failure(fault)
            await self.settle_row(start.operation_id, "compensated"
                                  if error_type(err) == "Cancelled" else "failed", fault)
            return fault
        failed = await undo.run()
        state = await self.real_state(facts)
        fault = describe(err) + (f" (undo of {', '.join(failed)} failed)" if failed else "")
        outcome = "compensated" if state == facts.vm_state and not failed else "failed"
        if on_failure:
            await on_failure(fault)
        await control(ControlStub.end_action, ActionEnd(
            start.instance_id, start.operation_id, state, outcome, fault))
        self.row_finished = True
        return fault

    async def _succeed(self, start: ActionStart, facts: InstanceFacts, target: str | None,
                       note: str | None) -> None:
        self.at("done", 100)
        if target is None:
            target = await self.real_state(facts)
        await control(ControlStub.end_action, ActionEnd(
            start.instance_id, start.operation_id, target, "succeeded", note))
        self.row_finished = True

    async def real_state(self, facts: InstanceFacts) -> str:
        try:
            obs = await on_host(facts.host, HostStub.observe, InstanceRef(facts.instance_id),
                                give_up_after_s=300)
        except Exception:
            return VmState.ERROR  # the host cannot tell us: say so rather than guess
        return obs.vm_state()

    async def host(self, facts: InstanceFacts, act: InstanceStep, step: str, *,
                   timeout_s: float = 120) -> None:
        self.at(step)
        await on_host(facts.host, act, InstanceRef(facts.instance_id), timeout_s=timeout_s)

    async def wait_agent(self, facts: InstanceFacts) -> None:
        if not facts.agent:
            return
        timeout_s = facts.agent_timeout_s
        self.at("waiting for the guest agent")
        deadline = workflow.now().timestamp() + timeout_s
        await on_host(facts.host, HostStub.wait_agent, WaitAgent(facts.instance_id, deadline),
                      heartbeat_s=10, timeout_s=timeout_s + 30, give_up_after_s=timeout_s * 3)
