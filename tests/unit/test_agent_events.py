"""Agent readiness by libvirt's agent-lifecycle event (activities/hypervisor/libvirt/
events.py): the waiter wakes when the agent connects, not on its next poll. On libvirt's
test driver, whose running domain `test` has no agent: the event is delivered as
libvirt's event loop would deliver it (the callback AgentEvents registered)."""

from __future__ import annotations

import threading
from pathlib import Path

import libvirt
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.hypervisor import host
from activities.hypervisor.host import HostActivities
from activities.hypervisor.libvirt import events
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.libvirt.events import AgentEvents
from vmflow.contracts.actions import WaitAgent
from vmflow.settings import Settings

CONNECTED = libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED
DISCONNECTED = libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED


@pytest.fixture
def running_test_domain() -> tuple[Connection, libvirt.virDomain]:
    events.start_event_loop()
    conn = Connection("test:///default")
    dom = conn.get().lookupByName("test")
    assert dom.isActive()
    return conn, dom


def test_only_a_connect_of_the_watched_guest_wakes_its_waiter(running_test_domain) -> None:
    conn, dom = running_test_domain
    agents = AgentEvents(conn)
    with agents.watching(dom.UUIDString().upper()) as connected:  # any case of the uuid
        assert connected is not None and not connected.is_set()
        agents._on_agent(None, dom, DISCONNECTED, 0, None)
        assert not connected.is_set()
        agents._on_agent(None, dom, CONNECTED, 0, None)
        assert connected.is_set()
    assert agents._waiting == {}  # no waiter left behind


def test_without_the_event_loop_the_waiter_polls(monkeypatch, running_test_domain) -> None:
    conn, _dom = running_test_domain
    monkeypatch.setattr(events, "_started", threading.Event())  # as in a process without it
    with AgentEvents(conn).watching("6695eb01-f6a4-8304-79aa-97f2502e193f") as connected:
        assert connected is None


def test_wait_agent_pings_as_soon_as_the_agent_connects(
    monkeypatch, tmp_path: Path, running_test_domain,
) -> None:
    """Rechecks only once a minute here and the agent answers only before the deadline:
    only the event can end the wait well, and the second ping is the answer."""
    conn, dom = running_test_domain
    acts = HostActivities(Settings(home=tmp_path, libvirt_uri="test:///default"), conn)
    monkeypatch.setattr(host, "AGENT_RECHECK_S", 60.0)
    up, pings = threading.Event(), []
    deadline = host.time.time() + 10

    def ping(self: Domain, command: str, timeout_s: int = 5) -> object:
        pings.append(command)
        if not up.is_set() or host.time.time() >= deadline:
            raise libvirt.libvirtError("QEMU guest agent is not connected")
        return {}

    def agent_starts() -> None:
        while not pings:  # the first ping failed: the waiter is watching
            threading.Event().wait(0.01)
        up.set()
        acts.agent_events._on_agent(None, dom, CONNECTED, 0, None)

    monkeypatch.setattr(Domain, "agent_command", ping)
    threading.Thread(target=agent_starts, daemon=True).start()
    ActivityEnvironment().run(acts.wait_agent, WaitAgent(dom.UUIDString(), deadline))
    assert pings == ["guest-ping", "guest-ping"]


def test_wait_agent_gives_up_at_the_deadline_with_events(tmp_path: Path,
                                                         running_test_domain) -> None:
    conn, dom = running_test_domain
    acts = HostActivities(Settings(home=tmp_path, libvirt_uri="test:///default"), conn)
    with pytest.raises(ApplicationError, match="did not answer before the boot deadline"):
        ActivityEnvironment().run(acts.wait_agent,
                                  WaitAgent(dom.UUIDString(), host.time.time() + 0.5))
