"""The ledger reconciler (admin): run it now, and read its recent runs.

    POST /v1/admin/reconcile-ledger -> 202 {schedule_id, triggered_at}
    GET  /v1/admin/reconcile-ledger -> {schedule_id, paused, next_run_at, runs: [...]}

Both go to the Temporal Schedule `reconcile-ledger` that the control worker makes
when it starts (workers/control.py); a trigger is a run now under the schedule's own
overlap policy, SKIP, so a trigger while a run is going starts nothing. Each run's
result (removed, forgotten, reported, deferred, failed, details) is the workflow's
result, as the Temporal Web UI shows it too.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, IdempotencyKey, SessionDep, TemporalDep
from api.schemas.reconcilers import ReconcilerTriggered, ReconcilerView
from api.services import reconcilers
from api.services.operations import idempotency_guard

router = APIRouter(prefix="/v1/admin", tags=["reconcilers"])


@router.post("/reconcile-ledger", status_code=202, response_model=ReconcilerTriggered)
async def trigger_ledger_reconcile(auth: AdminDep, client: TemporalDep, session: SessionDep,
                                   idempotency_key: IdempotencyKey = None
                                   ) -> ReconcilerTriggered:
    """Run the ledger reconciler now (its result: GET, or the Temporal Web UI); a
    repeated Idempotency-Key answers the first trigger and runs nothing."""
    async with idempotency_guard(auth, idempotency_key):
        return await reconcilers.trigger(client, session, auth, idempotency_key)


@router.get("/reconcile-ledger", response_model=ReconcilerView)
async def show_ledger_reconcile(auth: AdminDep, client: TemporalDep) -> ReconcilerView:
    return await reconcilers.show(client)
