"""The typed activity stubs (vmflow/contracts/*_stub.py) against what the workers
really register: every stub method is registered on exactly one worker, its own,
under the same name with the same input and output types; every registered
activity has a stub. And workflows call activities only through the stubs: no
string name, no hand-passed result type."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client

from activities.storage.ganesha import GaneshaExports
from vmflow.contracts.actions import Observation
from vmflow.contracts.activity_names import ControlActs, HostActs
from vmflow.contracts.control_stub import ControlStub
from vmflow.contracts.host_stub import HostStub
from vmflow.contracts.instances import InstanceRef
from vmflow.contracts.shares import ShareControlActs, StorageActs
from vmflow.contracts.storage_stub import StorageStub
from vmflow.settings import Settings
from workers import control, hypervisor, storage

ROOT = Path(__file__).resolve().parents[2]
STUBS: dict[str, type] = {"control": ControlStub, "hypervisor": HostStub,
                          "storage": StorageStub}
Registered = dict[str, list[Callable[..., Any]]]


@dataclasses.dataclass(frozen=True)
class Shape:
    """What a caller relies on: the activity's name, its parameter types, its result."""

    name: str
    params: tuple[Any, ...]
    returns: Any


def shape(fn: Callable[..., Any]) -> Shape:
    """Of a stub method (unbound) or a registered activity (bound method)."""
    func = getattr(fn, "__func__", fn)
    hints = typing.get_type_hints(func)
    params = list(inspect.signature(func).parameters)[1:]  # without self
    return Shape(activity._Definition.must_from_callable(fn).name,
                 tuple(hints.get(p) for p in params), hints.get("return"))


def stub_methods(stub: type) -> list[Callable[..., Any]]:
    """Its own and its bases' (the control stub is split by subject)."""
    found = {k: fn for c in reversed(stub.__mro__) for k, fn in vars(c).items()}
    return [fn for fn in found.values()
            if callable(fn) and activity._Definition.from_callable(fn) is not None]


def problems(stubs: dict[str, type], registered: Registered) -> list[str]:
    """Every way stubs and workers disagree, one line each; [] when they agree."""
    found = []
    on_worker = {w: {shape(fn).name: shape(fn) for fn in fns} for w, fns in registered.items()}
    for worker, stub in stubs.items():
        declared = {shape(fn).name: shape(fn) for fn in stub_methods(stub)}
        for name, want in declared.items():
            where = sorted(w for w, acts in on_worker.items() if name in acts)
            if where != [worker]:
                found.append(f"{stub.__name__} {name}: registered on {where or 'no worker'}, "
                             f"not only on {worker}")
            elif on_worker[worker][name] != want:
                found.append(f"{stub.__name__} {name}: stub {want} but {worker} registers "
                             f"{on_worker[worker][name]}")
        found += [f"{worker} registers {name} with no {stub.__name__} method"
                  for name in sorted(set(on_worker.get(worker, {})) - set(declared))]
    return found


@pytest.fixture
async def registered(tmp_path: Path) -> Registered:
    """What each worker registers, built with real dependencies: a lazy Temporal client
    (never dialled), libvirt's test driver, ganesha's exporter on a temp home."""
    s = Settings(home=tmp_path, host="h1", storage_host="s1", libvirt_uri="test:///default")
    client = await Client.connect("127.0.0.1:1", lazy=True)
    return {"control": control.activities(s, client),
            "hypervisor": hypervisor.activities(s),
            "storage": storage.activities(s, GaneshaExports(s))}


def test_stubs_and_workers_agree(registered: Registered) -> None:
    assert problems(STUBS, registered) == []
    counts = {w: len(fns) for w, fns in registered.items()}
    assert counts == {w: len(stub_methods(s)) for w, s in STUBS.items()}  # no duplicates


def test_every_name_constant_is_declared_by_its_queue_stub() -> None:
    """The constants stay the single source of each name; each has its stub method."""
    def values(*classes: type) -> set[str]:
        return {v for c in classes for k, v in vars(c).items() if k.isupper()}

    def names(stub: type) -> set[str]:
        return {shape(fn).name for fn in stub_methods(stub)}

    assert names(ControlStub) == values(ControlActs, ShareControlActs)
    assert names(HostStub) == values(HostActs)
    assert names(StorageStub) == values(StorageActs)


@pytest.mark.parametrize("stub", STUBS.values(), ids=STUBS.keys())
def test_every_stub_takes_one_frozen_dataclass(stub: type) -> None:
    for fn in stub_methods(stub):
        (param,) = shape(fn).params
        assert dataclasses.is_dataclass(param), fn.__name__
        assert param.__dataclass_params__.frozen, fn.__name__  # type: ignore[attr-defined]


def test_a_stub_only_declares() -> None:
    """Called by mistake outside a workflow, a stub says where the activity runs."""
    coro = HostStub().observe(InstanceRef("x"))
    with pytest.raises(NotImplementedError, match=r"hv\.<host>\) runs this activity"):
        coro.send(None)


# ---- the comparison itself sees each kind of disagreement ----------------------------

class WrongStub:
    @activity.defn(name=HostActs.OBSERVE)
    async def observe(self, ref: InstanceRef) -> None:  # the result is an Observation
        raise NotImplementedError

    @activity.defn(name=HostActs.POWER_ON)
    async def power_on(self, ref: Observation) -> None:  # the input is an InstanceRef
        raise NotImplementedError

    @activity.defn(name="host.no_such_step")
    async def missing(self, ref: InstanceRef) -> None:
        raise NotImplementedError

    @activity.defn(name=ControlActs.SCHEDULE)  # a control activity declared for a host
    async def schedule(self, ref: InstanceRef) -> None:
        raise NotImplementedError


def test_the_comparison_sees_every_disagreement(registered: Registered) -> None:
    found = problems({**STUBS, "hypervisor": WrongStub}, registered)
    assert any(p.startswith("WrongStub host.observe: stub") and "returns=<class 'NoneType'>"
               in p for p in found)
    assert any(p.startswith("WrongStub host.power_on: stub") and "Observation" in p
               for p in found)
    assert "WrongStub host.no_such_step: registered on no worker, not only on hypervisor" \
        in found
    assert "WrongStub control.schedule: registered on ['control'], not only on hypervisor" \
        in found
    # and every host activity WrongStub does not declare is reported as stub-less
    assert "hypervisor registers host.fetch_image with no WrongStub method" in found
    assert "hypervisor registers host.observe with no WrongStub method" not in found


# ---- workflows call activities only through the stubs --------------------------------

NAME_CONSTANTS = {"ControlActs", "HostActs", "StorageActs", "ShareControlActs"}
UNTYPED_CALLS = {"execute_activity", "start_activity", "execute_local_activity",
                 "start_local_activity"}


def untyped_activity_calls(source: str) -> list[str]:
    """A string name or a hand-passed result type: what the stubs replace."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if called in UNTYPED_CALLS:
                found.append((node.lineno, f"{called}(...)"))
            found += [(node.lineno, "result_type=") for k in node.keywords
                      if k.arg == "result_type"]
            if called in ("control", "on_host", "on_storage") and any(
                    isinstance(a, ast.Constant) and isinstance(a.value, str)
                    for a in node.args[:2]):
                found.append((node.lineno, f"{called} by a string name"))
        elif isinstance(node, ast.Name) and node.id in NAME_CONSTANTS:
            found.append((node.lineno, node.id))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_workflows_call_activities_only_through_stubs() -> None:
    found = {str(p.relative_to(ROOT)): untyped_activity_calls(p.read_text())
             for p in sorted((ROOT / "workflows").rglob("*.py"))}
    assert {f: lines for f, lines in found.items() if lines} == {}


def test_the_workflow_check_sees_each_untyped_call() -> None:
    source = '''
async def run(arg):
    await workflow.execute_activity("control.schedule", arg, result_type=ScheduleResult)
    await workflow.start_activity(HostActs.OBSERVE, arg)
    await control("control.claim", arg)
    await on_host(host, "host.observe", arg)
    await control(ControlStub.claim, arg)
'''
    assert untyped_activity_calls(source) == [
        "line 3: execute_activity(...)", "line 3: result_type=",
        "line 4: HostActs", "line 4: start_activity(...)",
        "line 5: control by a string name", "line 6: on_host by a string name"]
