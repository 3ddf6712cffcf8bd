"""`vmflow server backup-schedule` and `vmflow admin` against a MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.unit.cli_support import OP, SID, error, operation
from vmflow import cli

# ---- backup schedules -----------------------------------------------------------------

BSID = "0b5c3d1e-8f6a-4a57-9d0e-3c2b1a098765"
SCHEDULE = {"id": BSID, "server_id": SID, "every": "6h", "cron": None, "backup_type": "daily",
            "rotation": 7, "paused": False, "created_at": "2026-11-22T02:17:48Z",
            "schedule_id": f"backup-{SID}-{BSID}", "next_run_at": None}


def schedules_api(request: httpx.Request, **answers: httpx.Response) -> httpx.Response:
    """GET list of the server's schedules, else `answers[method]`."""
    if request.method == "GET" and request.url.path == f"/v1/servers/{SID}/backup-schedules":
        return httpx.Response(200, json={"backup_schedules": [SCHEDULE]})
    return answers[request.method]


@pytest.mark.parametrize("args,body", [
    (["--every", "6h", "--type", "daily", "--rotation", "7"],
     {"every": "6h", "backup_type": "daily", "rotation": 7}),
    (["--cron", "0 3 * * *", "--type", "nightly", "--rotation", "2"],
     {"cron": "0 3 * * *", "backup_type": "nightly", "rotation": 2}),
])
def test_backup_schedule_create(api, args: list[str], body: dict[str, Any],
                                capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(201, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "create", SID, *args]) == 0
    assert (seen[0].method, seen[0].url.path) == ("POST", f"/v1/servers/{SID}/backup-schedules")
    assert json.loads(seen[0].content) == body
    out = capsys.readouterr().out
    assert BSID in out and f"backup-{SID}-{BSID}" in out


def test_backup_schedule_create_usage_and_errors(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: error(400, "cron '61 * * * *': minute 61 is outside 0-59"))
    create = ["server", "backup-schedule", "create", SID, "--type", "d", "--rotation", "1"]
    assert cli.run(create) == 2  # neither
    assert cli.run([*create, "--every", "1h", "--cron", "0 * * * *"]) == 2  # both
    assert cli.run([*create[:-1], "0", "--every", "1h"]) == 2  # rotation >= 1
    assert seen == []
    assert cli.run([*create, "--cron", "61 * * * *"]) == 1
    assert "minute 61 is outside 0-59" in capsys.readouterr().err


def test_backup_schedule_list_show_and_prefix(api, capsys: pytest.CaptureFixture[str]) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        shown = {**SCHEDULE, "next_run_at": "2026-11-22T06:00:00Z"}
        return schedules_api(r, GET=httpx.Response(200, json=shown))

    seen = api(handler)
    assert cli.run(["server", "backup-schedule", "list", SID]) == 0
    text = capsys.readouterr().out
    assert BSID in text and "every 6h" in text and "daily" in text
    assert cli.run(["server", "backup-schedule", "list", SID, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [SCHEDULE]
    # a unique prefix of the id is enough
    assert cli.run(["server", "backup-schedule", "show", SID, BSID[:8]]) == 0
    assert "2026-11-22 06:00:00" in capsys.readouterr().out
    assert seen[-1].url.path == f"/v1/servers/{SID}/backup-schedules/{BSID}"
    assert cli.run(["server", "backup-schedule", "show", SID, "ffff"]) == 1
    assert "no backup schedules of server" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["pause", "unpause"])
def test_backup_schedule_pause_unpause(api, verb: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json={**SCHEDULE, "paused": verb == "pause"}))
    assert cli.run(["server", "backup-schedule", verb, SID, BSID]) == 0
    assert (seen[0].method, seen[0].url.path) == (
        "POST", f"/v1/servers/{SID}/backup-schedules/{BSID}/action")
    assert json.loads(seen[0].content) == {verb: None}
    assert ("yes" if verb == "pause" else "no") in capsys.readouterr().out


def test_backup_schedule_delete(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(204))
    assert cli.run(["server", "backup-schedule", "delete", SID, BSID]) == 0
    assert (seen[0].method, seen[0].url.path) == (
        "DELETE", f"/v1/servers/{SID}/backup-schedules/{BSID}")
    assert f"deleted backup schedule {BSID}" in capsys.readouterr().out


def test_backup_schedule_trigger(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(202, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID]) == 0
    assert json.loads(seen[0].content) == {"trigger": None}
    assert f"vmflow server actions {SID}" in capsys.readouterr().out


def backup_action(result: str, op: str = OP, fault: str | None = None) -> dict[str, Any]:
    return {"action": "backup", "result": result, "operation_id": op, "fault": fault,
            "workflow_id": f"instance-{SID}", "start": "2026-11-22T02:17:48Z"}


OLD = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize("new,final,code", [
    (backup_action("running"), "succeeded", 0),
    (backup_action("running"), "failed", 1),
    (backup_action("skipped", fault="skipped: another operation (stop) is running"), None, 1),
])
def test_backup_schedule_trigger_wait(api, monkeypatch: pytest.MonkeyPatch,
                                      new: dict[str, Any], final: str | None, code: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import backup_schedules
    monkeypatch.setattr(backup_schedules, "POLL_S", 0.0)
    old = backup_action("succeeded", op=OLD)
    history = iter([[old], [old], [old, new]])  # before the trigger, then until it shows

    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == f"/v1/servers/{SID}/actions":
            return httpx.Response(200, json={"actions": next(history)})
        if r.url.path == f"/v1/operations/{OP}":
            assert final is not None
            return httpx.Response(200, json={**operation(final), "action": "backup",
                                             "last_error": "disk full" if code else None})
        return httpx.Response(202, json=SCHEDULE)

    seen = api(handler)
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID, "--wait"]) == code
    assert [r.url.path for r in seen][:2] == [
        f"/v1/servers/{SID}/actions", f"/v1/servers/{SID}/backup-schedules/{BSID}/action"]
    captured = capsys.readouterr()
    if new["result"] == "skipped":
        assert "another operation (stop) is running" in captured.err
        assert all("/v1/operations/" not in r.url.path for r in seen)
    else:
        assert (final or "") in captured.out
        assert ("disk full" in captured.err) == (code == 1)


def test_backup_schedule_trigger_wait_gives_up(api, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import backup_schedules
    monkeypatch.setattr(backup_schedules, "POLL_S", 0.0)
    monkeypatch.setattr(backup_schedules, "TRIGGER_APPEARS_S", 0.05)
    api(lambda r: httpx.Response(200, json={"actions": []}) if r.method == "GET"
        else httpx.Response(202, json=SCHEDULE))
    assert cli.run(["server", "backup-schedule", "trigger", SID, BSID, "--wait"]) == 1
    assert "overlap SKIP" in capsys.readouterr().err


# ---- admin: the ledger reconciler ------------------------------------------------------

TRIGGERED = {"schedule_id": "reconcile-ledger", "triggered_at": "2026-11-22T02:17:48Z"}
RESULT = {"removed": 3, "forgotten": 3, "reported": 1, "deferred": 0, "failed": 0,
          "skipped_hosts": [], "details": ["hv1: instance x is deleted (...): removing its "
                                           "running domain, dir, claim on hv1"]}


def ledger_run(status: str, at: str, result: dict[str, Any] | None = None,
               wid: str = "reconcile-ledger-2026-11-22T02:17:48Z") -> dict[str, Any]:
    return {"workflow_id": wid, "run_id": "r1", "scheduled_at": at, "started_at": at,
            "status": status, "result": result, "error": None}


def test_admin_reconcile_ledger_triggers(api, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(202, json=TRIGGERED))
    assert cli.run(["admin", "reconcile-ledger"]) == 0
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/v1/admin/reconcile-ledger")]
    assert "vmflow admin reconcile-ledger-status" in capsys.readouterr().out


@pytest.mark.parametrize("final,code", [
    (ledger_run("completed", "2026-11-22T02:17:48.5Z", RESULT), 0),
    (ledger_run("completed", "2026-11-22T02:17:48.5Z", {**RESULT, "failed": 1}), 1),
    ({**ledger_run("failed", "2026-11-22T02:17:48.5Z"), "error": "boom"}, 1),
])
def test_admin_reconcile_ledger_wait_follows_the_new_run(
        api, monkeypatch: pytest.MonkeyPatch, final: dict[str, Any], code: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    earlier = ledger_run("completed", "2026-11-22T02:07:48Z", {**RESULT, "removed": 9},
                         wid="reconcile-ledger-2026-11-22T02:07:48Z")
    new = {**final, "status": "running", "result": None}
    views = iter([[earlier], [earlier, new], [earlier, final]])

    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "POST":
            return httpx.Response(202, json=TRIGGERED)
        return httpx.Response(200, json={"schedule_id": "reconcile-ledger", "paused": False,
                                         "runs": next(views)})

    api(handler)
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == code
    out = capsys.readouterr().out
    assert final["workflow_id"] in out and "02:07:48" not in out  # the new run, not the old
    if final["result"]:
        assert "removing its running domain, dir, claim" in out
    else:
        assert "boom" in out


def test_admin_reconcile_ledger_wait_follows_a_going_run_when_skipped(
        api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    monkeypatch.setattr(admin, "SKIPPED_AFTER_S", 0.0)
    going = ledger_run("running", "2026-11-22T02:10:00Z")
    views = iter([[going], [{**going, "status": "completed", "result": RESULT}]])
    api(lambda r: httpx.Response(202, json=TRIGGERED) if r.method == "POST" else
        httpx.Response(200, json={"runs": next(views)}))
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == 0
    captured = capsys.readouterr()
    assert "overlap SKIP" in captured.err and "removed" in captured.out


def test_admin_reconcile_ledger_wait_gives_up(api, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from vmflow.cli import admin
    monkeypatch.setattr(admin, "POLL_S", 0.0)
    monkeypatch.setattr(admin, "RUN_APPEARS_S", 0.05)
    api(lambda r: httpx.Response(202, json=TRIGGERED) if r.method == "POST" else
        httpx.Response(200, json={"runs": []}))
    assert cli.run(["admin", "reconcile-ledger", "--wait"]) == 1
    assert "no run started" in capsys.readouterr().err


def test_admin_reconcile_ledger_status(api, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [ledger_run("completed", "2026-11-22T02:07:48Z", {**RESULT, "removed": 0}),
            ledger_run("completed", "2026-11-22T02:17:48Z", RESULT)]
    api(lambda r: httpx.Response(200, json={"schedule_id": "reconcile-ledger",
                                            "paused": False, "next_run_at": None,
                                            "runs": runs}))
    assert cli.run(["admin", "reconcile-ledger-status"]) == 0
    out = capsys.readouterr().out
    assert "Removed" in out and "removing its running domain, dir, claim" in out


def test_admin_reconcile_ledger_needs_admin(api, capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: error(403, "'reconcile-ledger' needs role admin; the token has member"))
    assert cli.run(["admin", "reconcile-ledger"]) == 1
    assert "needs role admin" in capsys.readouterr().err
