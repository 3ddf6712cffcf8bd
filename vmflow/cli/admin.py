"""`vmflow admin ...`: the operators' tools that are not about one resource. Today the
ledger reconciler: run it now (and follow that run to its result), or show its recent
runs. HTTP only, like every command, but `outside`: it runs a command in the
embedded stack's outside-world namespace on this machine."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    calls,
    col,
    emit,
    err,
    fmt,
    kv_table,
    list_table,
    out,
    styled,
)

admin_app = typer.Typer(no_args_is_help=True, help="Operators' tools (admin).")

PATH = "/v1/admin/reconcile-ledger"
POLL_S = 1.0
RUN_APPEARS_S = 30.0  # a triggered run shows in the schedule's recent runs by then
SKIPPED_AFTER_S = 5.0  # no new run by then while one is going: the trigger was skipped
COUNTS = ("removed", "forgotten", "reported", "deferred", "failed", "repaired")


def when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    """One run as `key value` lines: ids, status, the counts, then each detail."""
    result = run.get("result") or {}
    view: dict[str, Any] = {"workflow_id": run.get("workflow_id"), "run_id": run.get("run_id"),
                            "started_at": run.get("started_at"), "status": run.get("status")}
    view.update({k: result.get(k) for k in COUNTS if k in result})
    if result.get("skipped_hosts"):
        view["skipped_hosts"] = result["skipped_hosts"]
    if run.get("error"):
        view["error"] = run["error"]
    return view


def show_run(run: dict[str, Any]) -> None:
    out().print(kv_table(run_view(run)))
    for line in (run.get("result") or {}).get("details") or []:
        out().print(f"  {escape(str(line))}")


def run_key(run: dict[str, Any]) -> tuple[Any, Any]:
    return run.get("workflow_id"), run.get("run_id")


def follow(api: Api, triggered_at: datetime) -> dict[str, Any]:
    """The run the trigger started, until it ends. Overlap SKIP starts nothing while a
    run is going: after a few seconds without a new run, follow the one going."""
    since = triggered_at - timedelta(seconds=2)  # the API's and Temporal's clocks
    started = time.monotonic()
    chosen = None
    while True:
        runs = api.get(PATH).get("runs") or []
        elapsed = time.monotonic() - started
        if chosen is None:
            new = [r for r in runs
                   if (when(r.get("scheduled_at")) or when(r.get("started_at")) or since) >= since
                   and (r.get("scheduled_at") or r.get("started_at"))]
            going = [r for r in runs if r.get("status") == "running"]
            if new:
                chosen = run_key(new[-1])
            elif going and elapsed > SKIPPED_AFTER_S:
                chosen = run_key(going[-1])
                err().print("a run was already going (overlap SKIP skipped the trigger); "
                            "following it")
            elif elapsed > RUN_APPEARS_S:
                err().print(f"[red]no run started within {RUN_APPEARS_S:.0f}s; see: "
                            "vmflow admin reconcile-ledger-status[/red]")
                raise typer.Exit(1)
        run = next((r for r in runs if chosen is not None and run_key(r) == chosen), None)
        if run is not None and run.get("status") != "running":
            return dict(run)
        time.sleep(POLL_S)


@admin_app.command("reconcile-ledger")
@calls("POST /v1/admin/reconcile-ledger", "GET /v1/admin/reconcile-ledger")
def reconcile_ledger(wait: bool = typer.Option(False, "--wait", help="Follow the run to its "
                                               "result (exit 1 if it or a removal failed)."),
                     as_json: JsonOpt = False) -> None:
    """Run the ledger reconciler now: on every host, remove what deleted instances left
    (domains, instance dirs, claims) and on every storage host what gone shares left
    (subvolumes, exports) once VMFLOW_RECONCILE_GRACE has passed, forget their ledger
    entries, report live instances and shares that disagree with their host, and mend
    the image store (interrupted uploads back to queued, unused files removed)."""
    api = Api()
    resp = api.call("POST", PATH)
    if not wait:
        emit(resp, as_json, lambda: f"triggered the ledger reconciler (Temporal Schedule "
                                    f"{resp['schedule_id']}); its result: vmflow admin "
                                    "reconcile-ledger-status")
        return
    run = follow(api, when(resp.get("triggered_at")) or datetime.now().astimezone())
    if as_json:
        emit(run, True, lambda: None)
    else:
        show_run(run)
    if run.get("status") != "completed" or (run.get("result") or {}).get("failed"):
        raise typer.Exit(1)


@admin_app.command("reconcile-ledger-status")
@calls("GET /v1/admin/reconcile-ledger")
def reconcile_ledger_status(as_json: JsonOpt = False) -> None:
    """The ledger reconciler's schedule and its recent runs with their counts; the
    newest run's details."""
    data = Api().get(PATH)
    if as_json:
        emit(data, True, lambda: None)
        return
    out().print(kv_table({"schedule_id": data.get("schedule_id"), "paused": data.get("paused"),
                          "next_run_at": data.get("next_run_at")}))
    runs = data.get("runs") or []
    if not runs:
        out().print("no runs yet")
        return

    def count(key: str) -> Column:
        return (key.capitalize(), lambda r: fmt((r.get("result") or {}).get(key)))

    columns: list[Column] = [("Workflow", col("workflow_id")), ("Started", col("started_at")),
                             ("Status", col("status", styled)), *(count(k) for k in COUNTS)]
    out().print(list_table(runs, columns))
    out().print()
    show_run(runs[-1])


@admin_app.command("outside", context_settings={"ignore_unknown_options": True})
def outside(command: list[str] = typer.Argument(..., help="The command and its arguments "
                                                "(after --), run as given: no shell.")) -> None:
    """Run a command in the embedded stack's outside world (its namespace on the hosts'
    external link, vmflow.hostbed), e.g. `vmflow admin outside -- ping -c 3 FLOATING_IP`:
    how a floating IP is reached from "the internet". Runs on this machine, as root;
    exits with the command's code."""
    from vmflow import hostbed
    from vmflow.settings import get_settings

    netns = hostbed.outside_netns(get_settings())
    if not Path("/run/netns", netns).exists():
        err().print(f"[red]no outside namespace {netns}: is the stack up with namespaced "
                    "hosts (make up)?[/red]")
        raise typer.Exit(1)
    rc = subprocess.run(["ip", "netns", "exec", netns, *command], check=False).returncode
    raise typer.Exit(rc)
