"""Workflow tests: a real Temporal dev server, the real control worker on a real
database (SQLite, or PostgreSQL with VMFLOW_TEST_DATABASE=postgresql), the real API
(hosts fetch images from it over HTTP), and hypervisor workers on libvirt's own
test:///default driver (with real qemu-img disks and real files), one fresh host name
per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.conftest import (
    ROOT,
    assert_on_test_database,
    db_session,
    new_database_url,
    qemu_home,
    stop,
    temporal_dev_server,
)
from tests.postgres import Postgres
from vmflow import stack
from vmflow.bootstrap import bootstrap
from vmflow.contracts.instances import OperationRef
from vmflow.models import Flavor, Host, Image, Instance, Operation, Project, User
from vmflow.names import CONTROL_QUEUE, instance_workflow_id
from vmflow.processes import free_port
from vmflow.settings import Settings
from workers import control, hypervisor


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    with temporal_dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield WorkflowEnvironment.from_client(await Client.connect(address))


@pytest.fixture(scope="session")
def wf_settings(tiny_guest: Path, test_postgres: Postgres | None) -> Iterator[Settings]:
    home = qemu_home("wf")
    s = Settings(home=home, host="unused", libvirt_uri="test:///default", virt_type="qemu",
                 schedule_to_start_timeout=2, agent_timeout=20, guest_cache=tiny_guest,
                 api_port=free_port(), database_url=new_database_url(test_postgres, "wf"))
    bootstrap(s)
    assert_on_test_database(s)
    with session(s) as db_s:  # test:///default has no guest agent to wait for
        tiny = db_s.exec(select(Image).where(Image.name == "tiny")).one()
        props = {k: v for k, v in tiny.properties.items() if k != "hw_qemu_guest_agent"}
        db_s.add(Image(name="tiny-noagent", status="active", disk_format="qcow2",
                       visibility="public", size=tiny.size, checksum=tiny.checksum,
                       location=tiny.location, properties=props))
        db_s.commit()
    yield s
    remove_guests_of_this_run()
    shutil.rmtree(home, ignore_errors=True)


def remove_guests_of_this_run() -> None:
    """Guests this run made on the machine's libvirtd (their domain prefixes carry the
    run's pid) are gone at its end, also those of a test that failed half-way."""
    if not stack.libvirt_ok():
        return
    import libvirt  # only where the machine's libvirtd runs

    conn = libvirt.open("qemu:///system")
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith("vmflow") and f"{os.getpid()}-" in dom.name():
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    finally:
        conn.close()



@pytest.fixture(scope="session")
def image_api(temporal: WorkflowEnvironment, wf_settings: Settings) -> Iterator[str]:
    """The real API in its own process on the same home and database: the image
    service the hosts download from (with the service token bootstrap wrote)."""
    target = temporal.client.service_client.config.target_host
    log = (wf_settings.home / "api.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT,
                            env=stack.stack_env(wf_settings, {"VMFLOW_TEMPORAL_ADDRESS": target}))
    try:
        deadline = time.monotonic() + 60
        while not stack.api_ok(wf_settings):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: "
                                   f"{(wf_settings.home / 'api.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield wf_settings.base_url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="session")
async def control_worker(
    temporal: WorkflowEnvironment, wf_settings: Settings
) -> AsyncIterator[None]:
    with ThreadPoolExecutor(16) as ex:
        async with control.build(temporal.client, wf_settings, ex):
            yield


HostFactory = Callable[..., AbstractAsyncContextManager[Settings]]


@pytest.fixture
def hv_worker(
    temporal: WorkflowEnvironment, wf_settings: Settings, control_worker: None, image_api: str
) -> HostFactory:
    """Start a registered hypervisor worker for a fresh host: `async with hv_worker() as s`."""

    @asynccontextmanager
    async def start(name: str | None = None, **overrides: object) -> AsyncIterator[Settings]:
        s = wf_settings.model_copy(update={"host": name or f"h{uuid.uuid4().hex[:8]}", **overrides})
        # a host on qemu:///system needs libvirtd, which a bare CI machine has not started
        stack.ensure_libvirt(s)
        await (await hypervisor.register(temporal.client, s)).result()
        mark_stopped(s, False)  # a host started again under its name takes work again
        try:
            with ThreadPoolExecutor(16) as ex:
                async with hypervisor.build(temporal.client, s, ex):
                    yield s
        finally:
            mark_stopped(s, True)

    return start


session = db_session


@contextmanager
def hosts_down(s: Settings) -> Iterator[None]:
    """Every host reads as down to the control worker (s: the tier's own settings) while
    inside, for a full ReconcileLedger run that needs no host: the stopped workers of
    earlier tests look alive for host_down_after (60 s), and the run would ask each of
    them in turn and wait out its schedule-to-start timeouts (20 s a host)."""
    saved = s.host_down_after
    s.host_down_after = 0.0
    try:
        yield
    finally:
        s.host_down_after = saved

STOPPED = "test worker stopped"


def mark_stopped(s: Settings, stopped: bool) -> None:
    """A test's host outlives its worker in the shared database and looks alive for
    VMFLOW_HOST_DOWN_AFTER; disabled, later tests' launches never choose it. A test that
    wants such a dead-but-fresh host enables it again."""
    with session(s) as db_s:
        host = db_s.get(Host, s.host)
        if host is None or (not stopped and host.disabled_reason != STOPPED):
            return
        host.status, host.disabled_reason = ("disabled", STOPPED) if stopped else ("enabled", None)
        db_s.add(host)
        db_s.commit()


def new_server(s: Settings, image: str = "tiny-noagent", flavor: str = "t1.micro") -> OperationRef:
    """What the API does before starting a launch: the instance and operation rows."""
    with session(s) as db_s:
        project = db_s.exec(select(Project)).first()
        user = db_s.exec(select(User)).first()
        img = db_s.exec(select(Image).where(Image.name == image)).one()
        flv = db_s.exec(select(Flavor).where(Flavor.name == flavor)).one()
        assert project and user
        inst = Instance(name="wf", project_id=project.id, user_id=user.id, image_id=img.id,
                        flavor_id=flv.id, task_state="scheduling")
        db_s.add(inst)
        op = Operation(resource_type="instance", resource_id=inst.id, action="create",
                       workflow_id=instance_workflow_id(inst.id), project_id=project.id,
                       user_id=user.id)
        db_s.add(op)
        db_s.commit()
        return OperationRef(inst.id, op.id)


def new_delete_op(s: Settings, instance_id: str) -> OperationRef:
    with session(s) as db_s:
        inst = db_s.get(Instance, instance_id)
        assert inst
        op = Operation(resource_type="instance", resource_id=inst.id, action="delete",
                       workflow_id=instance_workflow_id(inst.id), project_id=inst.project_id,
                       user_id=inst.user_id)
        db_s.add(op)
        db_s.commit()
        return OperationRef(inst.id, op.id)


async def run(client: Client, workflow: str, ref: OperationRef) -> object:
    return await client.execute_workflow(workflow, ref, id=instance_workflow_id(ref.instance_id),
                                         task_queue=CONTROL_QUEUE)
