"""The direct side of the launch benchmarks (bench/launch.py, bench/concurrency.py):
what the hypervisor worker does for a launch, straight on libvirt-python, minus
Temporal and the database, on the same guest images and the same host's libvirtd.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import libvirt

from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from bench.common import PREFIX
from vmflow.bootstrap import TINY_FILES
from vmflow.names import domain_name
from vmflow.settings import Settings


@dataclass
class Booted:
    """A guest the direct side booted and holds: its domain and instance directory."""
    dom: Domain
    dir: Path
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def disk(self) -> Path:
        return self.dir / "disk"


class Direct:
    """What the hypervisor worker does for a launch, minus Temporal and the database:
    the same cache (sha256-verified copy, then a stamp), overlay, config drive (the
    guest mounts it while booting, so both guests boot alike), XML, start, then the
    agent asked every 0.2 s."""

    def __init__(self, s: Settings, conn: Connection, api: httpx.Client):
        self.s, self.conn = s, conn
        self.cache, self.instances = s.home / "direct/cache", s.home / "direct/instances"
        self.virt_type = conn.virt_type(s.virt_type)
        images = {i["name"]: i for i in api.get("/v1/images").json()["images"]}
        flavor = next(f for f in api.get("/v1/flavors").json()["flavors"]
                      if f["name"] == "t1.micro")
        self.vcpus, self.ram_mb, self.disk_gb = flavor["vcpus"], flavor["ram"], flavor["disk"]
        self.files = {n: (images[n]["id"], s.guest_cache / f, images[n]["checksum"])
                      for n, f, _fmt in TINY_FILES}
        self.cmdline = images["tiny"]["properties"]["os_command_line"]

    def fetch(self, image_id: str, src: Path, checksum: str) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True)
        dst = self.cache / image_id
        stamp = dst.with_suffix(".verified")
        if dst.exists() and stamp.exists():
            st = dst.stat()
            if stamp.read_text() == f"{checksum} {st.st_size} {st.st_mtime_ns}":
                return dst
        tmp, h = dst.with_name(f"{dst.name}.part"), hashlib.sha256()
        with src.open("rb") as f, tmp.open("wb") as out:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != checksum:
            raise RuntimeError(f"{src}: sha256 does not match image {image_id}")
        tmp.chmod(0o644)
        tmp.rename(dst)
        st = dst.stat()
        stamp.write_text(f"{checksum} {st.st_size} {st.st_mtime_ns}")
        return dst

    def config_drive(self, d: Path, iid: str) -> Path:
        """As host.create_config_drive writes it: an ISO 9660 volume labelled config-2."""
        latest = d / "drive/openstack/latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(json.dumps({"uuid": iid, "name": "direct"}))
        iso = d / "config.iso"
        subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-V", "config-2", "-J", "-R",
                        "-input-charset", "utf-8", str(d / "drive")], check=True,
                       capture_output=True)
        iso.chmod(0o644)
        return iso

    def warm(self) -> None:
        """Fill the cache (guests booted at once then only read the stamp)."""
        for f in self.files.values():
            self.fetch(*f)

    def boot(self) -> Booted:
        """A guest up to its agent's answer, timed from the first step; it stays up."""
        steps: dict[str, float] = {}
        t0 = last = time.monotonic()

        def mark(step: str) -> None:
            nonlocal last
            steps[step], last = time.monotonic() - last, time.monotonic()

        paths = {n: str(self.fetch(*f)) for n, f in self.files.items()}
        mark("fetch")
        iid = str(uuid.uuid4())
        d = self.instances / iid
        root = paths["tiny"]
        if qemu_img.info(self.s, root, "qcow2").get("virtual-size", 0) > self.disk_gb * 2**30:
            raise RuntimeError("the image is larger than the flavor's disk")
        d.mkdir(parents=True)
        d.chmod(0o755)
        qemu_img.create_overlay(self.s, str(d / "disk.part"), root, "qcow2", self.disk_gb)
        (d / "disk.part").rename(d / "disk")
        mark("disk")
        drive = self.config_drive(d, iid)
        mark("drive")
        cfg = domain_xml.DomainConfig(
            uuid=iid, name=domain_name(PREFIX, iid), vcpus=self.vcpus, ram_mb=self.ram_mb,
            virt_type=self.virt_type,
            disks=[domain_xml.Disk(path=str(d / "disk"), target="vda", serial="root"),
                   domain_xml.Disk(path=str(drive), target="vdz", fmt="raw",
                                   serial="config-2", readonly=True)],
            console_log=str(d / "console.log"), kernel=paths["tiny-kernel"],
            initrd=paths["tiny-ramdisk"], cmdline=self.cmdline,
            extra_cmdline=["vmflow.root=/dev/vda"], agent=True)
        dom = Domain(self.conn.get().defineXML(domain_xml.build(cfg)))
        mark("define")
        dom.start()
        mark("start")
        deadline = time.monotonic() + self.s.agent_timeout
        while True:
            try:
                dom.agent_command("guest-ping", timeout_s=1)
                break
            except libvirt.libvirtError:
                if time.monotonic() > deadline or not dom.is_active():
                    raise
                time.sleep(0.2)
        mark("agent")
        return Booted(dom, d, time.monotonic() - t0, steps)

    @staticmethod
    def remove(guest: Booted) -> None:
        """What a delete does on the host: destroy, undefine, the instance dir."""
        guest.dom.destroy()
        guest.dom.undefine()
        shutil.rmtree(guest.dir)

    def launch(self) -> dict[str, Any]:
        """One guest booted, timed, and removed again."""
        guest = self.boot()
        self.remove(guest)
        return {"seconds": guest.seconds, "steps": guest.steps}
