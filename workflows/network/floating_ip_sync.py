"""SyncFloatingIp (workflow id floatingip-<id>): makes the hosts NAT a floating IP the
way its database row says. The API records an associate / disassociate / release and
signal-with-starts this workflow (vmflow.floating_sync), so concurrent requests queue
on one run instead of racing each other, as the share access reconcile does.

Each round: FLOATING_IP_PLAN reads where the NAT belongs now (the host running the
port's guest, or nowhere) and which other hosts are up; the target host ensures it
(address on its external link, 1:1 DNAT/SNAT, conntrack flushed), then every other
host removes it; the row's status becomes ACTIVE (NATed) or DOWN (nowhere to go).
A round that fails undoes the target's NAT and leaves the row DOWN; the run then fails
with the reason, which the Temporal UI shows on floatingip-<id>."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.networks import (
        FLOATING_IP_CHANGED_SIGNAL,
        FloatingIpPlan,
        FloatingIpRef,
        FloatingIpStatus,
        FloatingIpSync,
    )

from workflows._base.steps import all_of, control, describe, on_host

QUIET = timedelta(seconds=1)  # a burst of requests shares one run
MAX_ROUNDS = 100  # then continue as new, so the history stays small
ACTIVE, DOWN = "ACTIVE", "DOWN"


@workflow.defn(name="SyncFloatingIp")
class SyncFloatingIp:
    def __init__(self) -> None:
        self._changed = True  # the start itself is a change
        self._rounds = 0
        self._error: str | None = None
        self._step = "starting"

    @workflow.signal(name=FLOATING_IP_CHANGED_SIGNAL)
    def changed(self) -> None:
        self._changed = True

    @workflow.query(name="step")
    def step(self) -> str:
        return self._step

    @workflow.run
    async def run(self, req: FloatingIpSync) -> str:
        status = DOWN
        while True:
            while self._changed:
                self._changed = False
                status = await self._round(req)
                if self._rounds >= MAX_ROUNDS and not self._error:
                    workflow.continue_as_new(req)
            try:  # a signal that raced the end of the last round starts another one
                await workflow.wait_condition(lambda: self._changed, timeout=QUIET)
            except TimeoutError:
                if not self._changed:
                    break
        if self._error:
            raise ApplicationError(f"floating IP {req.floating_ip_address}: {self._error}",
                                   type="FloatingIpNotApplied", non_retryable=True)
        return status

    async def _round(self, req: FloatingIpSync) -> str:
        self._rounds += 1
        self._step = f"round {self._rounds}: planning"
        plan = await control(ControlStub.floating_ip_plan, req)
        ref = FloatingIpRef(plan.floating_ip_address)
        wait = plan.schedule_to_start_s
        try:
            if plan.host is not None and plan.spec is not None:
                self._step = f"round {self._rounds}: NAT on {plan.host}"
                await on_host(plan.host, HostStub.ensure_floating_ip, plan.spec,
                              schedule_to_start_s=wait, attempts=3)
            self._step = f"round {self._rounds}: clearing {len(plan.others)} other host(s)"
            await all_of(*(on_host(h, HostStub.remove_floating_ip, ref,
                                   schedule_to_start_s=wait, attempts=3)
                           for h in plan.others))
        except Exception as err:
            self._error = describe(err)
            await self._undo(plan)
            return DOWN
        self._error = None
        status = ACTIVE if plan.host is not None else DOWN
        await self._record(plan, status)
        self._step = f"round {self._rounds}: {status}"
        return status

    async def _undo(self, plan: FloatingIpPlan) -> None:
        """The target's NAT taken back (a guest reachable through a floating IP that
        shows DOWN would be a lie), then the row DOWN."""
        self._step = f"round {self._rounds}: undoing"
        if plan.host is not None:
            try:
                await on_host(plan.host, HostStub.remove_floating_ip,
                              FloatingIpRef(plan.floating_ip_address),
                              schedule_to_start_s=plan.schedule_to_start_s, attempts=3)
            except Exception as err:
                workflow.logger.warning("undo on %s failed: %s", plan.host, describe(err))
        await self._record(plan, DOWN)

    async def _record(self, plan: FloatingIpPlan, status: str) -> None:
        if plan.exists:
            await control(ControlStub.floating_ip_status, FloatingIpStatus(
                plan.floatingip_id, status, plan.fixed_ip_address, plan.port_id))
