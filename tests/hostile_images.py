"""A hostile image corpus made with the real qemu-img (and a few patched headers):
each file with the disk_format it is uploaded as and words its rejection must name.
Shared by the unit tests of vmflow.image_inspect and the API's upload tests."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hostile:
    name: str
    path: Path
    declared: str  # the disk_format it claims
    reason: str  # a fragment of the rejection message


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True, check=True)


def qcow2(path: Path, *args: str) -> Path:
    qemu_img("create", "-q", "-f", "qcow2", *args, path, "1M")
    return path


def patch_incompatible(path: Path, bits: int) -> Path:
    """Set incompatible feature bits of a qcow2 v3 header (offset 72, big-endian)."""
    with path.open("r+b") as f:
        f.seek(72)
        (old,) = struct.unpack(">Q", f.read(8))
        f.seek(72)
        f.write(struct.pack(">Q", old | bits))
    return path


def patch_first_extension(path: Path, kind: int) -> Path:
    """Give the first header extension of a qcow2 v3 image another type."""
    with path.open("r+b") as f:
        f.seek(100)
        (header_length,) = struct.unpack(">I", f.read(4))
        f.seek(header_length)
        f.write(struct.pack(">I", kind))
    return path


def patch_crypt_method(path: Path, method: int) -> Path:
    """Set a qcow2 header's crypt_method (offset 32, big-endian; 2 = LUKS). Written by
    hand: qemu-img's own LUKS setup times PBKDF with the thread CPU clock and fails
    ("Unable to get accurate CPU usage") where that clock is coarse, as on CI."""
    with path.open("r+b") as f:
        f.seek(32)
        f.write(struct.pack(">I", method))
    return path


def luks_header(path: Path) -> Path:
    """A LUKS1 volume header (magic, version, cipher, mode, hash, payload offset) on a
    1 MiB file; the inspector goes by the magic, as qemu's probe does."""
    header = struct.pack(">6sH32s32s32sII", b"LUKS\xba\xbe", 1, b"aes", b"xts-plain64",
                         b"sha256", 4096, 32)
    path.write_bytes(header + b"\0" * (2**20 - len(header)))
    return path


def build(d: Path) -> list[Hostile]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "data.raw").write_bytes(b"\0" * 4096)
    flat = d / "flat.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", flat, "1M")
    sparse = d / "sparse.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", sparse, "1M")
    huge = d / "huge.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", huge, "9P")
    raw = d / "plain.raw"
    raw.write_bytes(b"\x55" * 65536)
    corpus = [
        Hostile("qcow2 with a backing file", qcow2(d / "backing.qcow2", "-b", "/etc/hostname",
                                                   "-F", "raw"), "qcow2", "has a backing file"),
        Hostile("qcow2 with an external data file",
                qcow2(d / "datafile.qcow2", "-o", f"data_file={d / 'data.raw'}"), "qcow2",
                "external data file"),
        Hostile("raw declared, qcow2 backed by /etc/shadow",
                qcow2(d / "shadow.qcow2", "-b", "/etc/shadow", "-F", "raw"), "raw",
                "disk_format is raw but the data is qcow2"),
        Hostile("qcow2 declared, raw data", raw, "qcow2",
                "disk_format is qcow2 but the data is raw"),
        Hostile("VMDK descriptor with an extent in another file", flat, "raw",
                "extents in other files: 'flat-flat.vmdk'"),
        Hostile("VMDK sparse declared raw", sparse, "raw", "the data is VMDK"),
        Hostile("qcow2 of 9 PiB", huge, "qcow2", "absurd virtual size"),
        Hostile("unknown incompatible feature",
                patch_incompatible(qcow2(d / "unknown-bit.qcow2"), 1 << 17), "qcow2",
                "unknown incompatible features 0x20000"),
        Hostile("corrupt bit", patch_incompatible(qcow2(d / "corrupt.qcow2"), 1 << 1), "qcow2",
                "marked corrupt"),
        Hostile("unknown header extension",
                patch_first_extension(qcow2(d / "unknown-ext.qcow2"), 0x12345678), "qcow2",
                "unknown header extension 0x12345678"),
        Hostile("data file extension without the bit",
                patch_first_extension(qcow2(d / "data-ext.qcow2"), 0x44415441), "qcow2",
                "names an external data file"),
        Hostile("encrypted qcow2",
                patch_crypt_method(qcow2(d / "encrypted.qcow2"), 2), "qcow2", "encrypted"),
        Hostile("qcow version 1 as qcow2", _create(d / "v1.qcow", "qcow"), "qcow2",
                "the data is qcow (version 1)"),
        Hostile("empty file", _empty(d / "empty.raw"), "raw", "empty"),
    ]
    for fmt, name in (("vhdx", "VHDX"), ("vpc", "VHD (vpc)"), ("vdi", "VDI"), ("qed", "QED")):
        corpus.append(Hostile(f"{name} declared raw", _create(d / f"x.{fmt}", fmt), "raw",
                              f"the data is {name}"))
    corpus.append(Hostile("LUKS declared raw", luks_header(d / "x.luks"), "raw",
                          "the data is LUKS"))
    return corpus


def _create(path: Path, fmt: str) -> Path:
    qemu_img("create", "-q", "-f", fmt, path, "1M")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def iso(d: Path) -> Path:
    src = d / "iso-src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "hello.txt").write_text("hello\n")
    out = d / "x.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(out), "-V", "test", str(src)],
                   check=True, capture_output=True)
    return out
