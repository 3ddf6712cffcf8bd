"""vmflow.logs (JSON lines and their ids) and vmflow.worker_metrics (the workers' ports
in the embedded stack). The ids from a real activity and workflow:
tests/api/test_metrics_workers.py."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmflow import logs, worker_metrics
from vmflow.models import REQUEST_ID
from vmflow.processes import Component, free_port
from vmflow.settings import Settings


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@dataclass(frozen=True)
class LaunchInput:
    instance_id: str
    operation_id: str
    host: str
    flavor: str = "m1.tiny"


def test_input_ids_take_operation_resource_and_host() -> None:
    assert logs.input_ids(LaunchInput("i-1", "op-1", "h1")) == {
        "operation_id": "op-1", "resource_id": "i-1", "host": "h1"}
    assert logs.input_ids("not a dataclass") == {}


def test_a_json_line_parses_and_carries_the_context(restore_root: logging.Logger,
                                                    tmp_path: Path) -> None:
    out = io.StringIO()
    assert logs.setup(Settings(home=tmp_path, log_format="json"), stream=out) is True
    token = REQUEST_ID.set("req-42")
    try:
        with logs.context(operation_id="op-9", resource_id="i-9", host=None):
            logging.getLogger("vmflow.test").warning("it %s", "happened")
        logging.getLogger("vmflow.test").info("after")
    finally:
        REQUEST_ID.reset(token)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "it happened" and first["level"] == "WARNING"
    assert (first["operation_id"], first["resource_id"], first["request_id"]) == (
        "op-9", "i-9", "req-42")
    assert "host" not in first  # None values are left out
    assert "operation_id" not in second  # the context ended with its block


def test_text_is_the_default_and_auto_follows_the_terminal(restore_root: logging.Logger,
                                                           tmp_path: Path) -> None:
    assert Settings(home=tmp_path).log_format == "text"
    out = io.StringIO()
    assert logs.setup(Settings(home=tmp_path), stream=out) is False
    logging.getLogger("vmflow.test").info("plain")
    assert out.getvalue().rstrip().endswith("INFO vmflow.test: plain")
    auto = Settings(home=tmp_path, log_format="auto")
    assert logs.wants_json(auto, io.StringIO()) is True
    assert logs.wants_json(auto, Tty()) is False


def test_an_exception_is_in_the_line(restore_root: logging.Logger, tmp_path: Path) -> None:
    out = io.StringIO()
    logs.setup(Settings(home=tmp_path, log_format="json"), stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("vmflow.test").exception("failed")
    line = json.loads(out.getvalue())
    assert "ValueError: boom" in line["exc"]


def test_each_worker_gets_its_own_port_again_at_the_next_start(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    control = Component("control", ("python", "-m", "workers.control"),
                        ("-m", "workers.control"))
    hv = Component("hypervisor", ("python", "-m", "workers.hypervisor"),
                   ("-m", "workers.hypervisor"), env=(("VMFLOW_HOST", "h1"),))
    api = Component("api", ("python", "-m", "api"), ("-m", "api"))
    assert worker_metrics.with_port(s, api) is api  # not a worker: no metrics port
    first = dict(worker_metrics.with_port(s, control).env)
    second = dict(worker_metrics.with_port(s, hv).env)
    assert second["VMFLOW_HOST"] == "h1"
    assert first[worker_metrics.ENV] != second[worker_metrics.ENV]
    ports = worker_metrics.recorded_ports(s)
    assert first[worker_metrics.ENV] == f"127.0.0.1:{ports['control']}"
    again = dict(worker_metrics.with_port(s, control).env)
    assert again == first  # still free: the same port, so a scrape config keeps working


def test_a_worker_never_gets_a_port_the_stack_chose_for_the_api_or_temporal(
        tmp_path: Path) -> None:
    """The API's and Temporal's ports are chosen before anything binds them, so a
    bind test alone would call them free (seen in CI: the API could not bind)."""
    s = Settings(home=tmp_path, api_port=free_port(), temporal_ui_port=free_port(),
                 temporal_address=f"127.0.0.1:{free_port()}")
    chosen = {s.api_port, s.temporal_ui_port, s.temporal_port}
    worker_metrics._ports_file(s).parent.mkdir(parents=True, exist_ok=True)
    for port in chosen:  # what an earlier run of this home recorded
        worker_metrics._ports_file(s).write_text(json.dumps({"control": port}))
        assert worker_metrics.assign_port(s, "control") not in chosen


def test_no_address_no_runtime(tmp_path: Path) -> None:
    assert worker_metrics.runtime(Settings(home=tmp_path)) is None


def test_a_taken_port_leaves_the_worker_running_without_metrics(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        assert worker_metrics.runtime(
            Settings(home=tmp_path, worker_metrics_address=address)) is None
