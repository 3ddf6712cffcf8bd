"""The Domain wrapper (activities/hypervisor/libvirt/domain.py) on libvirt's own
test:///default driver: the one lookup error, each verb ensuring its state (again is a
no-op), destroy and undefine of a domain that is gone, undefine's flag fallback, and
the guest-agent calls as far as that driver has them (it has no agent channel at all:
an agent command fails at once; the wait for an agent that does not answer is covered
by the real-guest tiers, tests/integration/test_launch_delete.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from temporalio.exceptions import ApplicationError

from activities.hypervisor import thaw_guard
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.domain import NOTHING_TO_THAW, Domain
from vmflow.contracts.errors import Errors

TEST = "test:///default"


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open(TEST)  # the driver's state lives while a connection is open
    yield c
    c.close()


def config(iid: str, tmp: Path, agent: bool = True) -> str:
    return domain_xml.build(domain_xml.DomainConfig(
        uuid=iid, name=f"vmflow-{iid}", vcpus=1, ram_mb=64, virt_type="qemu",
        disks=[domain_xml.Disk(path=str(tmp / "disk"), target="vda", serial="root")],
        console_log=str(tmp / "console.log"), agent=agent))


@pytest.fixture
def defined(conn: libvirt.virConnect, tmp_path: Path) -> Iterator[str]:
    """A fresh, stopped domain of our own (the driver's "test" domain is shared)."""
    iid = str(uuid.uuid4())
    conn.defineXML(config(iid, tmp_path))
    yield iid
    for dom in conn.listAllDomains(0):
        if dom.UUIDString() == iid:
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def test_lookup_of_a_missing_domain_raises_the_one_error(conn: libvirt.virConnect) -> None:
    missing = str(uuid.uuid4())
    assert Domain.find(conn, missing) is None
    with pytest.raises(ApplicationError) as e:
        Domain.require(conn, missing)
    assert e.value.message == f"domain {missing} is not defined on this host"
    assert e.value.type == Errors.NOT_FOUND and e.value.non_retryable


def test_lookup_is_by_instance_uuid(conn: libvirt.virConnect) -> None:
    builtin = conn.lookupByName("test")  # the driver's own running domain
    dom = Domain.require(conn, builtin.UUIDString())
    assert (dom.name(), dom.uuid(), dom.power()) == ("test", builtin.UUIDString(), "running")
    assert dom.is_active() and not dom.has_managed_save()


def test_power_verbs_change_state_and_again_changes_nothing(conn: libvirt.virConnect,
                                                            defined: str) -> None:
    dom = Domain.require(conn, defined)
    assert dom.power() == "shutoff" and not dom.is_active()
    for _ in range(2):
        dom.start()
        assert dom.power() == "running" and dom.state() == libvirt.VIR_DOMAIN_RUNNING
    for _ in range(2):
        dom.pause()
        assert dom.power() == "paused"
    for _ in range(2):
        dom.unpause()
        assert dom.power() == "running"
    dom.request_shutdown()  # the test driver's guest obeys at once
    assert dom.power() == "shutoff"
    dom.start()
    for _ in range(2):
        dom.destroy()
        assert dom.power() == "shutoff"
    assert Domain.find(conn, defined) is not None  # destroy keeps the definition


def test_managed_save_and_its_checks(conn: libvirt.virConnect, defined: str) -> None:
    dom = Domain.require(conn, defined)
    with pytest.raises(ApplicationError) as e:  # off, nothing saved: cannot become saved
        dom.managed_save()
    assert e.value.type == Errors.INVALID_STATE and e.value.non_retryable
    assert "off without a saved image" in str(e.value)
    dom.start()
    for _ in range(2):  # the second finds it saved already
        dom.managed_save()
        assert dom.power() == "shutoff" and dom.has_managed_save()
    dom.start()  # restores the saved image, which is then gone
    assert dom.power() == "running" and not dom.has_managed_save()
    dom.managed_save()
    for _ in range(2):
        dom.drop_managed_save()
        assert not dom.has_managed_save()


def test_destroy_of_a_domain_gone_meanwhile_succeeds(conn: libvirt.virConnect,
                                                     tmp_path: Path) -> None:
    """A transient domain that powered off by itself is gone: the handle we hold
    answers "no such domain", and destroying it is done, not an error."""
    iid = str(uuid.uuid4())
    dom = Domain(conn.createXML(config(iid, tmp_path), 0))
    dom.request_shutdown()
    with pytest.raises(libvirt.libvirtError) as e:
        dom.is_active()
    assert e.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    dom.destroy()
    dom.undefine()
    assert Domain.find(conn, iid) is None


def test_destroy_of_a_running_domain(conn: libvirt.virConnect, tmp_path: Path) -> None:
    iid = str(uuid.uuid4())
    dom = Domain(conn.createXML(config(iid, tmp_path), 0))  # transient: gone once off
    assert dom.power() == "running"
    dom.destroy()
    assert Domain.find(conn, iid) is None


def test_undefine_clears_managed_save_and_snapshot_metadata(conn: libvirt.virConnect,
                                                            defined: str) -> None:
    """Plain undefine refuses a domain with snapshot metadata, and this driver refuses
    the NVRAM and checkpoint flags: only the fallback gets it undefined."""
    dom = Domain.require(conn, defined)
    dom.start()
    dom.virdom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    dom.managed_save()
    with pytest.raises(libvirt.libvirtError):
        dom.virdom.undefine()
    for _ in range(2):  # the second finds it undefined already
        dom.undefine()
        assert Domain.find(conn, defined) is None


def test_undefine_of_a_stopped_domain(conn: libvirt.virConnect, defined: str) -> None:
    Domain.require(conn, defined).undefine()
    assert Domain.find(conn, defined) is None


def test_agent_command_without_an_agent_fails_at_once(conn: libvirt.virConnect,
                                                      defined: str) -> None:
    """This driver has no guest agent: the command fails with libvirt's reason well
    within its timeout instead of waiting (the boot wait retries on this error)."""
    dom = Domain.require(conn, defined)
    dom.start()
    t0 = time.monotonic()
    with pytest.raises(libvirt.libvirtError) as e:
        dom.agent_command("guest-ping", timeout_s=1)
    assert time.monotonic() - t0 < 1.0
    assert "virDomainQemuAgentCommand" in str(e.value)
    with pytest.raises(libvirt.libvirtError) as e:
        dom.limit_agent_wait(1)
    assert e.value.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT


def test_freeze_and_thaw(conn: libvirt.virConnect, defined: str) -> None:
    dom = Domain.require(conn, defined)
    with pytest.raises(libvirt.libvirtError) as e:  # not running: nothing is frozen
        dom.thaw()
    assert e.value.get_error_code() in NOTHING_TO_THAW
    dom.start()
    assert dom.freeze() > 0
    assert dom.freeze() == 0  # frozen already
    assert dom.thaw() > 0
    assert dom.thaw() == 0


def test_thaw_guard_thaws_a_frozen_guest_and_accepts_a_gone_one(
        conn: libvirt.virConnect, defined: str, capsys: pytest.CaptureFixture[str]) -> None:
    dom = Domain.require(conn, defined)
    dom.start()
    frozen = dom.freeze()
    assert thaw_guard.thaw_once(TEST, defined)  # the agent timeout is refused here: ignored
    assert dom.thaw() == 0  # the guard thawed them
    assert f"({frozen} file systems were frozen)" in capsys.readouterr().err
    assert thaw_guard.thaw_once(TEST, str(uuid.uuid4()))
    assert "the domain is not defined" in capsys.readouterr().err
