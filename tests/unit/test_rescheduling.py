"""Rescheduling: tried hosts keep the reason they failed, the attempts bound ends the
placement with one NoValidHost naming every host, the setting is validated, and
plans and requests from before the fields existed still decode."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import ValidationError
from temporalio.converter import DataConverter

from activities.control.scheduler import (
    HostState,
    Ratios,
    Request,
    attempts_used,
    no_valid_host_message,
    select,
)
from vmflow.contracts.instances import ImageFile, LaunchPlan, ScheduleRequest
from vmflow.settings import Settings
from workflows._base.placement import not_taken

R = Ratios()


def host(name: str, **kw: object) -> HostState:
    base: dict = dict(vcpus=2, ram_mb=4096, disk_gb=100, traits=[], alive=True)
    base.update(kw)
    return HostState(name, **base)


def test_a_tried_host_is_rejected_with_what_happened_on_it() -> None:
    hosts = [host("hv-a", ram_mb=8192), host("hv-b")]
    fit, reasons = select(hosts, Request(1, 256, 1, tried={"hv-a": not_taken(2)}, attempts=3), R)
    assert fit == ["hv-b"] and reasons == {"hv-a": "did not take the step within 2s"}


def test_used_up_attempts_reject_every_host_with_its_reason() -> None:
    hosts = [host("hv-a"), host("hv-b", status="disabled", disabled_reason="maintenance"),
             host("hv-c", used_ram_mb=3500), host("hv-d")]
    req = Request(1, 256, 1, tried={"hv-a": not_taken(2.5)}, attempts=1)
    fit, reasons = select(hosts, req, R)
    assert fit == []
    assert no_valid_host_message(reasons) == (
        "No valid host was found. 4 host(s) rejected: hv-a: did not take the step within 2.5s; "
        "hv-b: disabled: maintenance; hv-c: only 84 MiB free RAM; "
        f"hv-d: {attempts_used(1)}.")
    assert attempts_used(1) == "not tried: the 1 schedule attempt(s) are used up"


def test_attempts_left_still_place_and_no_bound_when_zero() -> None:
    hosts = [host("hv-a"), host("hv-b"), host("hv-c")]
    tried = {"hv-a": not_taken(2), "hv-b": not_taken(2)}
    assert select(hosts, Request(1, 1, 1, tried=tried, attempts=3), R)[0] == ["hv-c"]
    assert select(hosts, Request(1, 1, 1, tried=tried, attempts=2), R)[0] == []
    assert select(hosts, Request(1, 1, 1, tried=tried), R)[0] == ["hv-c"]


def test_a_tried_host_that_was_since_removed_is_still_named() -> None:
    fit, reasons = select([host("hv-b")], Request(1, 1, 1, tried={"gone": not_taken(2)},
                                                   attempts=1), R)
    assert fit == [] and set(reasons) == {"gone", "hv-b"}


def test_schedule_attempts_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMFLOW_SCHEDULE_ATTEMPTS", raising=False)
    assert Settings().schedule_attempts == 3
    monkeypatch.setenv("VMFLOW_SCHEDULE_ATTEMPTS", "1")
    assert Settings().schedule_attempts == 1
    for bad in ("0", "-2", "three"):
        monkeypatch.setenv("VMFLOW_SCHEDULE_ATTEMPTS", bad)
        with pytest.raises(ValidationError, match="schedule_attempts"):
            Settings()


def test_payloads_without_the_new_fields_still_decode() -> None:
    """In-flight histories hold plans and requests written before these fields."""
    conv = DataConverter.default.payload_converter
    root = ImageFile("img", "/v1/images/img/file", "c0ffee", 1, "qcow2")
    plan = LaunchPlan("i", "p", 1, 256, 1, [], [], root, None, None, "", False, None, 10.0, 180.0)
    old = {k: v for k, v in dataclasses.asdict(plan).items() if k != "schedule_attempts"}
    payload = conv.to_payloads([old])[0]
    assert json.loads(payload.data) == old
    assert conv.from_payloads([payload], [LaunchPlan])[0] == plan
    assert plan.schedule_attempts == 3
    req = {"instance_id": "i", "vcpus": 1, "ram_mb": 1, "disk_gb": 1, "required_traits": [],
           "forbidden_traits": [], "exclude_hosts": ["hv-a"]}
    decoded = conv.from_payloads(conv.to_payloads([req]), [ScheduleRequest])[0]
    assert (decoded.exclude_hosts, decoded.tried, decoded.attempts) == (["hv-a"], {}, 0)
