"""Kill-matrix cases of the workflows nobody starts by hand: the reconcilers and the
scheduled backup (each started by its Temporal Schedule, triggered as the API or an
operator does), host registration (the id and input the hypervisor worker starts it
with), the timers (armed by the rescue or shelve that production arms them from), and
a shelve-offload by hand of a SHELVED server. Most have no operation row: each one's
Started.wait follows its workflow in Temporal, and each case's check says what must
hold afterwards. The Case entries are in tests/faults/cases.py (CASES)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from tests.conftest import db_session
from tests.integration.conftest import action, wait_operation
from tests.integration.test_shares import backend_remains
from vmflow.contracts.instances import HostInfo
from vmflow.contracts.reconcile import ReconcileLedgerResult
from vmflow.contracts.shelve import ShelveRequest
from vmflow.contracts.snapshots import ScheduledBackupResult
from vmflow.models import Instance
from vmflow.names import (
    CONTROL_QUEUE,
    LEDGER_RECONCILE_SCHEDULE,
    POWER_SYNC_SCHEDULE,
    auto_unrescue_workflow_id,
    host_workflow_id,
    shelve_offload_workflow_id,
)
from vmflow.operations import instance_spec, start_operation
from vmflow.settings import Settings
from vmflow.temporal import connect
from workers.fault_point import FIRED_FILE

if TYPE_CHECKING:
    from tests.faults.cases import Arm, Pool, Started

WAIT_S = 900  # the longest a workflow of a cell is followed (a backup of a TCG guest)
TRIGGER_S = 30  # a trigger's run shows in the schedule within this
FIRE_S = 240  # a triggered run is followed this long for its boundary (matrix.run's)
TRIGGERS = 3  # runs triggered before a cell says its boundary was never reached
TIMER_S = 1  # the timers' wait (each is armed when its rescue or shelve ended)
# worst first: the status a cell reports when it followed more than one run
ORDER = ("running", "failed", "compensated", "succeeded")


def unarmed() -> None:
    """The Arm of a clean run: no fault (a scheduled case then waits for no fire)."""


def _started(*args: Any, **kwargs: Any) -> Started:
    from tests.faults.cases import Started  # cases.py lists these cases: no import cycle
    return Started(*args, **kwargs)


def _run(s: Settings, go: Callable[[Client], Any]) -> Any:
    async def main() -> Any:
        return await go(await connect(s))
    return asyncio.run(main())


def outcome(s: Settings, workflow_id: str, result_type: type | None = None
            ) -> tuple[str, Any]:
    """How the workflow's latest run ended (following continue-as-new): succeeded and
    its result, failed and the error, or running after WAIT_S."""
    async def go(client: Client) -> tuple[str, Any]:
        handle = client.get_workflow_handle(workflow_id, result_type=result_type)
        try:
            return "succeeded", await asyncio.wait_for(handle.result(), WAIT_S)
        except WorkflowFailureError as err:
            return "failed", err
        except TimeoutError:
            return "running", None
    result: tuple[str, Any] = _run(s, go)
    return result


def worst(statuses: list[str]) -> str:
    return min(statuses, key=lambda st: ORDER.index(st) if st in ORDER else -1)


def fired_runs(s: Settings, workflow_type: str, t0: float) -> set[str]:
    """The workflow ids the fault point fired in since t0 (a schedule's own tick may
    have run into it before the triggered one)."""
    try:
        lines = (s.home / FIRED_FILE).read_text().splitlines()
    except OSError:
        return set()
    return {f["workflow_id"] for f in map(json.loads, lines)
            if f["at"] >= t0 and f["workflow_type"] == workflow_type}


def schedule_runs(s: Settings, schedule_id: str) -> set[tuple[str, str]]:
    """(workflow id, run id) of the schedule's recent and running runs. Pairs, not ids:
    a run triggered within the second of the one before gets that one's id."""
    async def go(client: Client) -> set[tuple[str, str]]:
        info = (await client.get_schedule_handle(schedule_id).describe()).info
        runs = [a.action for a in info.recent_actions] + list(info.running_actions)
        # an action being started shows no workflow id yet
        return {(r.workflow_id, r.first_execution_run_id) for r in runs
                if isinstance(r, ScheduleActionExecutionStartWorkflow) and r.workflow_id}
    runs: set[tuple[str, str]] = _run(s, go)
    return runs


def trigger_schedule(s: Settings, schedule_id: str) -> None:
    """What `temporal schedule trigger` does (the power-sync schedule has no route)."""
    async def go(client: Client) -> None:
        await client.get_schedule_handle(schedule_id).trigger()
    _run(s, go)


def wait_idle(s: Settings, schedule_id: str, timeout: float = 300) -> None:
    """No run of the schedule in flight: with overlap SKIP a trigger meanwhile starts
    nothing (a full reconcile on a loaded machine outlasts the wait for its run)."""
    async def go(client: Client) -> int:
        return len((await client.get_schedule_handle(schedule_id).describe()).info
                   .running_actions)
    deadline = time.monotonic() + timeout
    while _run(s, go):
        assert time.monotonic() < deadline, f"{schedule_id}: a run still in flight"
        time.sleep(0.5)


def schedule_facts(s: Settings, schedule_id: str) -> str:
    """What an assertion about a schedule prints: whether it is paused, its runs."""
    async def go(client: Client) -> str:
        desc = await client.get_schedule_handle(schedule_id).describe()
        recent = [(a.action.workflow_id, a.started_at.isoformat()) for a in desc.info.recent_actions
                  if isinstance(a.action, ScheduleActionExecutionStartWorkflow)]
        return (f"paused={desc.schedule.state.paused} running={desc.info.running_actions} "
                f"recent={recent[-4:]} now={time.time():.1f}")
    facts: str = _run(s, go)
    return facts


def run_closed(s: Settings, workflow_id: str) -> bool:
    async def go(client: Client) -> bool:
        desc = await client.get_workflow_handle(workflow_id).describe()
        return desc.status != WorkflowExecutionStatus.RUNNING
    closed: bool = _run(s, go)
    return closed


def triggered(s: Settings, schedule_id: str, trigger: Callable[[], None]) -> str | None:
    """Trigger the schedule; the id of the run it started (or of the tick that started
    meanwhile), None if none started within TRIGGER_S (overlap SKIP drops a trigger
    that meets a run in flight)."""
    before = schedule_runs(s, schedule_id)
    trigger()
    deadline = time.monotonic() + TRIGGER_S
    while not (new := schedule_runs(s, schedule_id) - before):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    return max(new)[0]  # the ids end in the start time


def fire_by_schedule(s: Settings, workflow_type: str, schedule_id: str,
                     trigger: Callable[[], None], t0: float) -> str:
    """Trigger runs until one reaches the armed boundary (its worker dies there); the
    first triggered run's id (Started.wait follows it and every run that fired). A run
    may end without reaching it: PowerSync passes over a server while an operation of it
    runs, and a trigger that met a tick is dropped."""
    ran: list[str] = []
    for _ in range(TRIGGERS):
        wait_idle(s, schedule_id)
        wid = triggered(s, schedule_id, trigger)
        ran += [wid] if wid else []
        deadline = time.monotonic() + FIRE_S
        while (wid is not None and time.monotonic() < deadline
               and not fired_runs(s, workflow_type, t0) and not run_closed(s, wid)):
            time.sleep(0.2)
        if fired := fired_runs(s, workflow_type, t0):
            return ran[0] if ran else min(fired)  # else a tick reached it
    ends = {wid: outcome(s, wid) if run_closed(s, wid) else "running" for wid in ran}
    raise AssertionError(f"{schedule_id}: {TRIGGERS} triggers, no run reached the armed "
                         f"boundary; runs {ends}; {schedule_facts(s, schedule_id)}")


def settings_of(pool: Pool) -> Settings:
    assert pool.s is not None, "the background cases need the stack's settings"
    return pool.s


def scheduled(pool: Pool, workflow_type: str, schedule_id: str, resource: str,
              trigger: Callable[[], None], arm: Arm) -> Started:
    s = settings_of(pool)
    wait_idle(s, schedule_id)
    t0 = time.time()
    arm()
    if arm is unarmed:  # a clean run: the first run triggered
        wid = triggered(s, schedule_id, trigger)
        assert wid is not None, f"{schedule_id}: no run; {schedule_facts(s, schedule_id)}"
    else:
        wid = fire_by_schedule(s, workflow_type, schedule_id, trigger, t0)

    def wait() -> str:
        runs = {wid} | fired_runs(s, workflow_type, t0)
        return worst([outcome(s, run)[0] for run in sorted(runs)])
    return _started(resource, None, wid, wait, {"t0": t0})


def power_sync(pool: Pool, arm: Arm) -> Started:
    sid = pool.server_in("ACTIVE")
    s = settings_of(pool)
    return scheduled(pool, "PowerSync", POWER_SYNC_SCHEDULE, sid,
                     lambda: trigger_schedule(s, POWER_SYNC_SCHEDULE), arm)


def reconcile_ledger(pool: Pool, arm: Arm) -> Started:
    sid = pool.server_in("ACTIVE")
    share = pool.share_available()

    def trigger() -> None:
        r = pool.api.post("/v1/admin/reconcile-ledger")
        assert r.status_code == 202, r.text
    started = scheduled(pool, "ReconcileLedger", LEDGER_RECONCILE_SCHEDULE, sid, trigger, arm)
    started.facts["share"] = share
    return started


def ledger_kept(s: Settings, api: httpx.Client, started: Started, status: str) -> list[str]:
    """The reconciler removed nothing of a live server or share (the matrix checks the
    server against libvirt and the ledger audit), and failed no removal."""
    bad = []
    share = started.facts.get("share")
    if share is not None:
        if api.get(f"/v1/shares/{share}").json().get("status") != "available":
            bad.append(f"share {share} not available")
        if not backend_remains(s, share)["subvolume"]:
            bad.append(f"share {share}: {backend_remains(s, share)}")
    state, result = outcome(s, started.workflow_id, ReconcileLedgerResult)
    if state == "succeeded" and result.failed:
        bad.append(f"reconcile failed {result.failed}: {result.details}")
    return bad


def backup_schedule(pool: Pool, sid: str) -> dict[str, Any]:
    found = pool.api.get(f"/v1/servers/{sid}/backup-schedules").json()["backup_schedules"]
    if found:
        return dict(found[0])
    r = pool.api.post(f"/v1/servers/{sid}/backup-schedules",
                      json={"every": "1d", "backup_type": "fault", "rotation": 1})
    assert r.status_code == 201, r.text
    return dict(r.json())


def backup_ids(api: httpx.Client, sid: str) -> set[str]:
    return {i["id"] for i in api.get("/v1/images").json()["images"]
            if i["properties"].get("instance_uuid") == sid
            and i["properties"].get("image_type") == "backup"}


def scheduled_backup(pool: Pool, arm: Arm) -> Started:
    sid = pool.server_in("ACTIVE")
    sched = backup_schedule(pool, sid)
    before = backup_ids(pool.api, sid)
    actions = {a["operation_id"] for a in server_actions(pool.api, sid)}

    def trigger() -> None:
        r = pool.api.post(f"/v1/servers/{sid}/backup-schedules/{sched['id']}/action",
                          json={"trigger": None})
        assert r.status_code == 202, r.text
    started = scheduled(pool, "ScheduledBackup", sched["schedule_id"], sid, trigger, arm)
    s = settings_of(pool)

    def wait() -> str:  # a backup that compensated fails the tick: BackupFailed
        state, result = outcome(s, started.workflow_id, ScheduledBackupResult)
        if state == "failed" and "compensated" in str(result.cause):
            return "compensated"
        if state == "succeeded" and result.status == "skipped":
            return f"skipped ({result.reason})"
        return state
    started.wait = wait
    started.facts.update(before=before, actions=actions)
    return started


def one_backup(s: Settings, api: httpx.Client, started: Started, status: str) -> list[str]:
    """succeeded: exactly one new backup image, active, and one backup action;
    compensated: no new image left."""
    sid = started.resource
    images = {i["id"]: i for i in api.get("/v1/images").json()["images"]}
    new = [images[i] for i in backup_ids(api, sid) - started.facts["before"]]
    live = [i for i in new if i["status"] not in ("deleted", "killed")]
    backups = [a for a in server_actions(api, sid)
               if a["action"] == "backup" and a["operation_id"] not in started.facts["actions"]]
    want = 1 if status == "succeeded" else 0
    bad = [] if len(live) == want else [f"{len(live)} new backup images: {live}"]
    bad += [] if len(backups) == 1 else [f"{len(backups)} backup actions: {backups}"]
    return bad


def register_host(pool: Pool, arm: Arm) -> Started:
    """What the hypervisor worker does when it starts (workers/hypervisor.py: register),
    with the host's facts it sent last time."""
    s = settings_of(pool)
    wid = host_workflow_id(s.host)

    async def go(client: Client) -> None:
        history = await client.get_workflow_handle(wid).fetch_history()
        payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
        (info,) = await client.data_converter.decode(payloads, [HostInfo])
        arm()
        await client.start_workflow(
            "RegisterHost", info, id=wid, task_queue=CONTROL_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
    _run(s, go)
    return _started(s.host, None, wid, lambda: outcome(s, wid)[0])


def host_up(s: Settings, api: httpx.Client, started: Started, status: str) -> list[str]:
    r = api.get(f"/v1/hosts/{started.resource}")
    if r.status_code != 200:
        return [f"host {started.resource}: {r.status_code}"]
    host = r.json()
    return [] if host["state"] == "up" else [f"host {started.resource} {host['state']}"]


def server_actions(api: httpx.Client, sid: str) -> list[dict[str, Any]]:
    return list(api.get(f"/v1/servers/{sid}/actions").json()["actions"])


def timer(pool: Pool, sid: str, first_op: str, timer_id: str, what: str) -> Started:
    """The timer's run, then the operation it started: how that ended."""
    s = settings_of(pool)
    before = {a["operation_id"] for a in server_actions(pool.api, sid)} | {first_op}

    def wait() -> str:
        first = wait_operation(pool.api, first_op, timeout=WAIT_S)["status"]
        if first != "succeeded":
            return f"{first} before the timer"
        state, result = outcome(s, timer_id)
        if state != "succeeded":
            return state
        m = re.fullmatch(rf"{what} started: operation (\S+)", str(result))
        if m is None:
            return f"timer: {result}"
        return str(wait_operation(pool.api, m[1], timeout=WAIT_S)["status"])
    return _started(sid, None, timer_id, wait, {"before": before, "action": what})


def once(s: Settings, api: httpx.Client, started: Started, status: str) -> list[str]:
    """The timer's operation ran exactly once."""
    ran = [a for a in server_actions(api, started.resource)
           if a["action"] == started.facts["action"]
           and a["operation_id"] not in started.facts["before"]]
    return [] if len(ran) == 1 else [f"{len(ran)} {started.facts['action']} operations"]


def auto_unrescue(pool: Pool, arm: Arm) -> Started:
    """A rescue with unrescue_after: the API arms AutoUnrescue when the rescue ends."""
    sid = pool.server_in("ACTIVE")
    arm()  # names AutoUnrescue's steps: the rescue's own do not match
    r = action(pool.api, sid, {"rescue": {"unrescue_after": TIMER_S}})
    assert r.status_code == 202, r.text
    rescue = r.json()["operation"]["id"]
    return timer(pool, sid, rescue, auto_unrescue_workflow_id(sid, rescue), "unrescue")


def shelve_with(pool: Pool, sid: str, offload_after_s: int) -> str:
    """A shelve as the API starts it (vmflow.operations.start_operation) when it reads
    VMFLOW_SHELVED_OFFLOAD_TIME=offload_after_s; the fault stack offloads at once (0),
    so a shelve that keeps the server SHELVED, or arms the timer, starts here."""
    s = settings_of(pool)

    async def go(client: Client) -> str:
        with db_session(s) as session:
            inst = session.get(Instance, sid)
            assert inst is not None
            spec = instance_spec(inst, "shelve", inst.user_id,
                                 lambda op_id: ShelveRequest(sid, op_id, offload_after_s))
            return (await start_operation(client, session, spec)).id
    op_id: str = _run(s, go)
    return op_id


def shelve_offload_timer(pool: Pool, arm: Arm) -> Started:
    sid = pool.server_in("ACTIVE")
    arm()  # names ShelveOffloadTimer's step: the shelve's own do not match
    shelve = shelve_with(pool, sid, TIMER_S)
    return timer(pool, sid, shelve, shelve_offload_workflow_id(sid, shelve), "shelve-offload")


def shelve_offload(pool: Pool, arm: Arm) -> Started:
    """shelveOffload by hand (admin) of a server shelved without offload."""
    sid = pool.server_in("ACTIVE")
    shelved = wait_operation(pool.api, shelve_with(pool, sid, -1), timeout=WAIT_S)
    assert shelved["status"] == "succeeded", shelved
    arm()
    r = action(pool.api, sid, {"shelveOffload": None})
    assert r.status_code == 202, r.text
    op = r.json()["operation"]
    return _started(sid, op["id"], op.get("workflow_id") or "")


def in_status(want: str) -> Callable[[Settings, httpx.Client, Started, str], list[str]]:
    """The server reached the status its workflow leads to (or stayed in it)."""
    def check(s: Settings, api: httpx.Client, started: Started, status: str) -> list[str]:
        now = api.get(f"/v1/servers/{started.resource}").json().get("status")
        return [] if status != "succeeded" or now == want else [f"status {now}, not {want}"]
    return check


def both(*checks: Callable[[Settings, httpx.Client, Started, str], list[str]]
         ) -> Callable[[Settings, httpx.Client, Started, str], list[str]]:
    return lambda s, api, started, status: [v for c in checks
                                            for v in c(s, api, started, status)]
