"""The fault point is inert unless the stack enables it, and fires on exactly the
attempt a spec names (the matrix sees it kill real workers: test_matrix.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from temporalio import activity

from vmflow.processes import REPO
from vmflow.settings import Settings
from workers.fault_point import SPEC_FILE, FaultPoints, disarm, interceptors, matches


def info(**over: Any) -> activity.Info:
    base = {"activity_type": "host.snapshot_disk", "attempt": 1, "activity_id": "7",
            "workflow_type": "SnapshotInstance", "task_queue": "hv.h1"}
    return cast(activity.Info, SimpleNamespace(**{**base, **over}))


def test_off_unless_the_setting_says_so(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).fault_points is False
    assert interceptors(Settings(home=tmp_path)) == []
    [installed] = interceptors(Settings(home=tmp_path, fault_points=True))
    assert isinstance(installed, FaultPoints) and installed.home == tmp_path


def test_a_spec_matches_only_what_it_names() -> None:
    spec = {"activity": "host.snapshot_disk", "when": "after", "attempt": 1}
    assert matches(spec, info(), "after")
    assert not matches(spec, info(), "before")
    assert not matches(spec, info(attempt=2), "after")  # the retry runs to its end
    assert not matches(spec, info(activity_type="host.discard_snapshot"), "after")
    named = {**spec, "workflow_type": "SnapshotInstance", "activity_id": "7", "queue": "hv.h1"}
    assert matches(named, info(), "after")
    assert not matches(named, info(workflow_type="ShelveInstance"), "after")
    assert not matches(named, info(activity_id="9"), "after")
    assert not matches(named, info(task_queue="hv.h2"), "after")
    assert not matches({"when": "after"}, info(), "after")  # no activity: never


def test_disarm_returns_only_once_a_firing_worker_is_dead(tmp_path: Path) -> None:
    """A worker that read the spec before disarm dies before disarm returns, so the
    harness's `make up` right after restarts it (CI: a kill after the op had ended)."""
    (tmp_path / SPEC_FILE).write_text("{}")
    code = ("import time; from pathlib import Path;"
            "from workers.fault_point import _die, _spec_lock\n"
            f"with _spec_lock(Path({str(tmp_path)!r})) as lock:\n"
            "    print('firing', flush=True); time.sleep(1); _die(lock)")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    assert worker.stdout is not None and worker.stdout.readline() == "firing\n"
    disarm(tmp_path)
    assert worker.poll() == -signal.SIGKILL
    assert not (tmp_path / SPEC_FILE).exists()
