"""SyncShareAccess (workflow id share-<id>-access): the per-share reconcile of access
rules. The API records a rule change (queued_to_apply / queued_to_deny, the share's
access_rules_status syncing) and signal-with-starts this workflow, so concurrent
allow/deny requests queue on one run instead of racing each other.

Each round: RULES_TO_APPLY moves the queued rules on (applying / denying) and gives
the whole list that should be in force; the storage worker makes the export say
exactly that (so repeating a round is harmless); RULES_APPLIED records the outcome
per rule. Rounds repeat while signals keep coming; the run ends only after a short
quiet spell, checked once more right before returning, so no signal is lost."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.shares import (
        RULES_CHANGED_SIGNAL,
        ApplyAccess,
        RulesApplied,
        ShareAccessSync,
        ShareErrors,
        ShareRef,
    )
    from vmflow.contracts.storage_stub import StorageStub

from workflows._base.steps import control, error_type
from workflows.share.steps import ShareWorkflow, on_storage, reason

QUIET = timedelta(seconds=1)  # a burst of requests shares one run
MAX_ROUNDS = 200  # then continue as new, so the history stays small


@workflow.defn(name="SyncShareAccess")
class SyncShareAccess(ShareWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._changed = True  # the start itself is a change (the first signal, too)
        self._rounds = 0

    @workflow.signal(name=RULES_CHANGED_SIGNAL)
    def rules_changed(self) -> None:
        self._changed = True

    @workflow.run
    async def run(self, req: ShareAccessSync) -> int:
        try:
            plan = await self.plan(ShareRef(req.share_id), req.host)
        except Exception as err:
            if error_type(err) == ShareErrors.NOT_FOUND:
                return 0  # the share is gone: nothing to enforce
            raise
        while True:
            while self._changed:
                self._changed = False
                if not await self._round(req, plan.schedule_to_start_s):
                    return self._rounds
                if self._rounds >= MAX_ROUNDS:
                    workflow.continue_as_new(req)
            try:  # a signal that raced the end of the last round starts another one
                await workflow.wait_condition(lambda: self._changed, timeout=QUIET)
            except TimeoutError:
                if not self._changed:
                    return self._rounds

    async def _round(self, req: ShareAccessSync, wait_s: float) -> bool:
        """One reconcile; False when the share is gone or being deleted."""
        self._rounds += 1
        self.at(f"round {self._rounds}: reading the rules")
        try:
            ids = await control(ControlStub.share_rules_to_apply, ShareRef(req.share_id))
        except Exception as err:
            if error_type(err) == ShareErrors.NOT_FOUND:
                return False
            raise
        self.at(f"round {self._rounds}: applying {len(ids.rules)} rule(s)")
        try:
            done = await on_storage(req.host, StorageStub.apply_access,
                                    ApplyAccess(req.share_id, ids.rules),
                                    schedule_to_start_s=wait_s)
            outcome = RulesApplied(req.share_id, done.applied, ids.denying, done.errors)
        except Exception as err:
            # the exporter's state is unknown: this round's changes go to error with
            # the reason (RULES_APPLIED leaves rules that were already active alone)
            why = reason(err, req.host)
            failed = [r.rule_id for r in ids.rules] + ids.denying
            outcome = RulesApplied(req.share_id, [], [], {i: why for i in failed})
        await control(ControlStub.share_rules_applied, outcome)
        return True
