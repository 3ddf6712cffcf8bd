"""libvirt's domain events, as the hypervisor worker uses them: the guest agent's
lifecycle (connected / disconnected), so waiting for a booting guest's agent wakes the
moment qemu-ga opens its channel instead of asking it every 0.2 s.

Events need libvirt's default event loop, registered in the process before the
connection that wants them is opened (start_event_loop(), from the worker's start) and
run on a daemon thread for the life of the process. Without it AgentEvents says so and
the waiter polls as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libvirt

from activities.hypervisor.libvirt.connection import Connection

log = logging.getLogger(__name__)

_started = threading.Event()
_start_lock = threading.Lock()


def start_event_loop() -> None:
    """libvirt's default event loop on a daemon thread; once per process, idempotent."""
    with _start_lock:
        if _started.is_set():
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run, name="libvirt-events", daemon=True).start()
        _started.set()


def _run() -> None:
    # one iteration per event or timer; the thread ends with the process
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            log.warning("libvirt's event loop failed an iteration")


def loop_running() -> bool:
    return _started.is_set()


class AgentEvents:
    """Which guests' agents have connected since a waiter started watching them, as
    libvirt reports it on the worker's connection (one callback per connection; a
    reopened connection gets it again)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._lock = threading.Lock()
        self._registered_on: libvirt.virConnect | None = None
        self._waiting: dict[str, list[threading.Event]] = {}

    def _ensure_registered(self) -> bool:
        if not loop_running():
            return False
        c = self.conn.get()
        with self._lock:
            if self._registered_on is c:
                return True
            try:
                c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE,
                                         self._on_agent, None)
            except libvirt.libvirtError as e:  # a driver without events: poll
                log.info("no agent lifecycle events on %s: %s", self.conn.uri, e)
                return False
            self._registered_on = c
            return True

    def _on_agent(self, _conn: Any, dom: libvirt.virDomain, state: int, _reason: int,
                  _opaque: Any) -> None:
        if state != libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED:
            return
        with self._lock:
            waiters = list(self._waiting.get(dom.UUIDString(), ()))
        for ev in waiters:
            ev.set()

    @contextmanager
    def watching(self, instance_id: str) -> Iterator[threading.Event | None]:
        """An Event set when the guest's agent connects, from now on; None when this
        connection gives no events (the caller polls)."""
        if not self._ensure_registered():
            yield None
            return
        ev, instance_id = threading.Event(), instance_id.lower()  # as UUIDString() gives it
        with self._lock:
            self._waiting.setdefault(instance_id, []).append(ev)
        try:
            yield ev
        finally:
            with self._lock:
                waiters = self._waiting.get(instance_id, [])
                if ev in waiters:
                    waiters.remove(ev)
                if not waiters:
                    self._waiting.pop(instance_id, None)
