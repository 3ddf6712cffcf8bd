"""SyncSecurityGroup (workflow id secgroup-<group id>): a security group's change
reaching the running guests. The API signal-with-starts it after a rule is made or
deleted and after a port joins or leaves the group, so changes arriving while a round
runs queue on one run instead of racing each other.

Each round reads the group's plan (activities/control/port_rules.py: every port the
change touches, with its whole filter computed from the database now) and ensures
each port on its host (host.ensure_port, which redefines the port's nwfilter in place:
libvirt applies it to the running NIC before it returns). A round repeats while
signals keep coming, so the last state always wins. A host that fails does not stop
the others: its ports are listed as failed, and the reconciler's network pass
catches the host up later."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub

    # imported here so the sandbox's modules have it: decoding a PortSpec resolves its
    # field types (SecurityGroupRule) in this module's namespace
    from vmflow.contracts.networks import PortSpec
    from vmflow.contracts.security_groups import (
        GROUP_CHANGED_SIGNAL,
        PortOnHost,
        SecurityGroupSync,
        SecurityGroupSyncResult,
    )

from workflows._base.steps import control, describe, on_host

QUIET = timedelta(seconds=1)  # a burst of changes shares one run
MAX_ROUNDS = 100  # then continue as new, so the history stays small
HOST_PICKUP_S = 10  # a dead host is given up on after this, not waited for


@workflow.defn(name="SyncSecurityGroup")
class SyncSecurityGroup:
    def __init__(self) -> None:
        self._changed = True  # the start itself is a change
        self._rounds = 0
        self._last = SecurityGroupSyncResult([], [], [], 0)

    @workflow.signal(name=GROUP_CHANGED_SIGNAL)
    def group_changed(self) -> None:
        self._changed = True

    @workflow.query(name="last_round")
    def last_round(self) -> SecurityGroupSyncResult:
        return self._last

    @workflow.run
    async def run(self, req: SecurityGroupSync) -> SecurityGroupSyncResult:
        while True:
            while self._changed:
                self._changed = False
                await self._round(req)
                if self._rounds >= MAX_ROUNDS:
                    workflow.continue_as_new(req)
            try:  # a signal that raced the end of the last round starts another one
                await workflow.wait_condition(lambda: self._changed, timeout=QUIET)
            except TimeoutError:
                if not self._changed:
                    return self._last

    async def _round(self, req: SecurityGroupSync) -> None:
        self._rounds += 1
        plan = await control(ControlStub.security_group_plan, req)
        outcomes = await asyncio.gather(*(self._apply(t) for t in plan.targets))
        applied = [f"{t.port.port_id}@{t.host}" for t, why in zip(plan.targets, outcomes,
                                                                   strict=True) if why is None]
        failed = [f"{t.port.port_id}@{t.host}: {why}" for t, why in zip(plan.targets, outcomes,
                                                                         strict=True) if why]
        self._last = SecurityGroupSyncResult(applied, failed, plan.unbound, self._rounds)
        workflow.logger.info("security group %s round %d: %d applied, %d failed, %d unbound",
                             req.security_group_id, self._rounds, len(applied), len(failed),
                             len(plan.unbound))

    async def _apply(self, target: PortOnHost) -> str | None:
        """None when the port's filter is in force on its host, else why not."""
        port: PortSpec = target.port
        try:
            await on_host(target.host, HostStub.ensure_port, port,
                          schedule_to_start_s=HOST_PICKUP_S, timeout_s=60, attempts=3,
                          give_up_after_s=120)
        except Exception as err:
            return describe(err)
        return None
