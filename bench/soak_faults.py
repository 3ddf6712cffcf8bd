"""The soak's fault injector: every random interval, kill -9 one part of the stack
(the control, a hypervisor or the storage worker, the Temporal dev server, or a host's
libvirtd), then start what is missing as `make up` does."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import Any

from vmflow import hostbed, stack
from vmflow.settings import Settings

RECOVER_TRIES = 3


def targets(s: Settings) -> list[tuple[str, str]]:
    """(kind, target): stack components by their component name, libvirtds by host."""
    names = {c.name for c in stack.components(s)}
    out = [("control", "control"), ("temporal", "temporal")]
    out += [("hypervisor", name) for name, _ in stack.hypervisor_hosts(s)]
    out += [("storage", "storage")] if "storage" in names else []
    out += [("libvirtd", h) for h in hostbed.host_names(s)]
    return out


def kill(s: Settings, kind: str, target: str) -> int | None:
    if kind != "libvirtd":
        return stack.kill_component(s, target)
    pid = hostbed.host(s, target).pid("libvirtd")
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):  # gone within 5 s: a zombie's /proc entry has no cmdline
        if hostbed.host(s, target).pid("libvirtd") != pid:
            break
        time.sleep(0.1)
    return pid


def recover(s: Settings) -> str | None:
    """stack.up until it says healthy; the last error if it never did."""
    error = None
    for _ in range(RECOVER_TRIES):
        try:
            stack.up(s)
            return None
        except Exception as e:  # noqa: BLE001 - reported, and tried again
            error = f"{type(e).__name__}: {e}"
            time.sleep(2)
    return error


class Injector(threading.Thread):
    def __init__(self, s: Settings, rng: random.Random, every: tuple[float, float]):
        super().__init__(name="fault-injector", daemon=True)
        self.s, self.rng, self.every = s, rng, every
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []

    def run(self) -> None:
        choices = targets(self.s)
        kinds = sorted({k for k, _ in choices})
        deck: list[str] = []
        while not self.stop.wait(self.rng.uniform(*self.every)):
            if not deck:  # every kind once, in a random order, before any repeats
                deck = self.rng.sample(kinds, len(kinds))
            kind = deck.pop()
            target = self.rng.choice([t for k, t in choices if k == kind])
            at = time.time()
            t0 = time.monotonic()
            pid = kill(self.s, kind, target)
            error = recover(self.s)
            fault = {"kind": kind, "target": target, "pid": pid, "at": at,
                     "recovered_s": round(time.monotonic() - t0, 2), "recover_error": error}
            with self.lock:
                self.faults.append(fault)
            print(f"FAULT kill -9 {kind} {target} (pid {pid}); back in "
                  f"{fault['recovered_s']} s{' ERROR ' + error if error else ''}", flush=True)

    def finish(self, timeout: float = 300) -> None:
        self.stop.set()
        self.join(timeout)
