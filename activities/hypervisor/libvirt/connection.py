"""A thin wrapper over a libvirt connection: one per worker, reopened when it drops.
A domain on it is looked up and driven through domain.Domain."""

from __future__ import annotations

import threading
from pathlib import Path

import libvirt

# libvirt prints every error to stderr by default; we handle them as exceptions
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class Connection:
    def __init__(self, uri: str):
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    def get(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is None or not self._conn.isAlive():
                self._conn = libvirt.open(self.uri)
            return self._conn

    def virt_type(self, wanted: str) -> str:
        """kvm where libvirt offers it and the CPU has hardware virtualization, else qemu.

        /dev/kvm alone is not enough: a software KVM (PVM) cannot boot a stock kernel.
        """
        if wanted in ("kvm", "qemu"):
            return wanted
        flags = Path("/proc/cpuinfo").read_text()
        if " vmx" not in flags and " svm" not in flags:
            return "qemu"
        try:
            self.get().getDomainCapabilities(None, "x86_64", None, "kvm", 0)
        except libvirt.libvirtError:
            return "qemu"
        return "kvm"

