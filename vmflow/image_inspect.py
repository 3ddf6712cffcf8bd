"""Inspection of untrusted image files before anything else touches them (DESIGN
decision 10): the real format is read from the bytes, a mismatch with the declared
disk_format is refused, and a qcow2 is refused if opening it could make qemu read
anything but the file itself (a backing file, an external data file) or if it
carries features we do not know.

Only headers are read, with bounded reads (at most the first qcow2 cluster, 2 MiB);
nothing the file names is ever opened. Standard library only: the API uses it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

HEAD_BYTES = 64 * 1024  # every magic we look for lies in here (ISO 9660 at 0x8001)

# declared disk_format -> formats its bytes may really be. An ISO is raw to qemu, and
# a kernel (aki) or ramdisk (ari) is a raw file: none of them may be a container.
ACCEPTED = {
    "qcow2": {"qcow2"},
    "raw": {"raw", "iso"},
    "aki": {"raw", "iso"},
    "ari": {"raw", "iso"},
    "iso": {"raw", "iso"},
}

NAMES = {
    "qcow2": "qcow2", "qcow": "qcow (version 1)", "qed": "QED", "vmdk": "VMDK",
    "vhdx": "VHDX", "vdi": "VDI", "vpc": "VHD (vpc)", "luks": "LUKS",
    "iso": "ISO 9660", "bochs": "Bochs", "cloop": "cloop", "parallels": "Parallels",
    "raw": "raw",
}

# qcow2 (docs/interop/qcow2.txt in QEMU)
QCOW2_V2_HEADER = 72
QCOW2_V3_HEADER = 104
INCOMPAT_DIRTY, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE = 1 << 0, 1 << 1, 1 << 2
INCOMPAT_COMPRESSION, INCOMPAT_EXTL2 = 1 << 3, 1 << 4
INCOMPAT_KNOWN = (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE
                  | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2)
EXT_END = 0x00000000
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_NAMES = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_ENCRYPTION = 0x0537BE77
EXT_DATA_FILE = 0x44415441
# harmless without a backing file / encryption (both refused on their own)
EXT_ALLOWED = {EXT_BACKING_FORMAT, EXT_FEATURE_NAMES, EXT_BITMAPS}

VMDK_SAFE_TYPES = {"monolithicSparse", "streamOptimized"}


class ImageRejected(ValueError):
    """The file is not what it claims or could make qemu read other files."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Inspection:
    format: str  # what the bytes are: qcow2 | raw | iso
    virtual_size: int  # bytes the guest sees


def inspect(path: str | os.PathLike[str], declared_format: str,
            max_virtual_size: int) -> Inspection:
    """Inspect the file at `path` (never a symlink) declared as `declared_format`;
    raises ImageRejected with the reason if it may not be used as such."""
    allowed = ACCEPTED.get(declared_format)
    if allowed is None:
        raise ImageRejected(f"disk_format {declared_format!r} is not supported")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ImageRejected("the image file is empty")
        head = _read(f, 0, HEAD_BYTES)
        fmt = detect(head)
        if fmt not in allowed:
            detail = _danger(f, fmt, head)
            raise ImageRejected(
                f"disk_format is {declared_format} but the data is {NAMES[fmt]}"
                + (f" ({detail})" if detail else ""))
        virtual = _qcow2(f, size) if fmt == "qcow2" else size
    if virtual > max_virtual_size:
        raise ImageRejected(
            f"absurd virtual size: {virtual} bytes ({virtual / 2**30:.0f} GiB) is more than "
            f"the limit of {max_virtual_size} bytes ({max_virtual_size / 2**30:.0f} GiB)")
    return Inspection(format=fmt, virtual_size=virtual)


def detect(head: bytes) -> str:
    """The format of a file from its first HEAD_BYTES, as QEMU's probes would see it
    (plus ISO 9660); anything else is raw."""
    if head[:4] == b"QFI\xfb":
        version = struct.unpack(">I", head[4:8])[0] if len(head) >= 8 else 0
        return "qcow" if version == 1 else "qcow2"
    magics = [
        (b"QED\x00", "qed"), (b"KDMV", "vmdk"), (b"COWD", "vmdk"), (b"vhdxfile", "vhdx"),
        (b"conectix", "vpc"), (b"LUKS\xba\xbe", "luks"), (b"Bochs Virtual HD Image", "bochs"),
        (b"#!/bin/sh\n#V2.0 Format\n", "cloop"), (b"WithoutFreeSpace", "parallels"),
        (b"WithouFreSpacExt", "parallels"),
    ]
    for magic, fmt in magics:
        if head.startswith(magic):
            return fmt
    if len(head) >= 0x44 and struct.unpack("<I", head[0x40:0x44])[0] == 0xBEDA107F:
        return "vdi"
    if _vmdk_text(head):
        return "vmdk"
    if head[0x8001:0x8006] == b"CD001":
        return "iso"
    return "raw"


def _vmdk_text(head: bytes) -> bool:
    """A VMDK text descriptor: QEMU accepts comment and blank lines, then version=N."""
    if b"# Disk DescriptorFile" in head[:1024]:
        return True
    for line in head[:4096].split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"#") or not line.strip(b" "):
            continue
        return line in (b"version=1", b"version=2", b"version=3")
    return False


def _read(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _danger(f: BinaryIO, fmt: str, head: bytes) -> str | None:
    """What else is wrong with a file of the wrong format, for the message."""
    if fmt == "qcow2":
        try:
            _qcow2(f, os.fstat(f.fileno()).st_size)
        except ImageRejected as e:
            return e.reason
    if fmt == "vmdk":
        return _vmdk_danger(f, head)
    return None


def _qcow2(f: BinaryIO, size: int) -> int:
    """Check a qcow2 header and its extensions; returns the virtual size."""
    hdr = _read(f, 0, QCOW2_V3_HEADER)
    if len(hdr) < QCOW2_V2_HEADER:
        raise ImageRejected("truncated qcow2 header")
    (_magic, version, backing_offset, backing_size, cluster_bits, virtual_size, crypt,
     *_rest) = struct.unpack(">4sIQIIQIIQQIIQ", hdr[:QCOW2_V2_HEADER])
    if version not in (2, 3):
        raise ImageRejected(f"qcow2 version {version} is not supported")
    if backing_offset or backing_size:
        name = _name(f, backing_offset, backing_size)
        raise ImageRejected(f"the qcow2 image has a backing file{name}")
    if not 9 <= cluster_bits <= 21:
        raise ImageRejected(f"invalid qcow2 cluster size 2^{cluster_bits}")
    if crypt:
        raise ImageRejected("the qcow2 image is encrypted")
    header_length = QCOW2_V2_HEADER
    if version == 3:
        if len(hdr) < QCOW2_V3_HEADER:
            raise ImageRejected("truncated qcow2 version 3 header")
        incompat, _compat, _autoclear, _refcount_order, header_length = struct.unpack(
            ">QQQII", hdr[QCOW2_V2_HEADER:QCOW2_V3_HEADER])
        _check_features(f, incompat, header_length)
    cluster_size = 1 << cluster_bits
    if header_length < QCOW2_V2_HEADER or header_length % 8 or header_length > cluster_size:
        raise ImageRejected(f"invalid qcow2 header length {header_length}")
    _check_extensions(_read(f, 0, min(cluster_size, size)), header_length)
    return int(virtual_size)


def _check_features(f: BinaryIO, incompat: int, header_length: int) -> None:
    if incompat & INCOMPAT_CORRUPT:
        raise ImageRejected("the qcow2 image is marked corrupt")
    if incompat & INCOMPAT_DATA_FILE:
        raise ImageRejected("the qcow2 image has an external data file")
    unknown = incompat & ~INCOMPAT_KNOWN
    if unknown:
        raise ImageRejected(f"the qcow2 image has unknown incompatible features {unknown:#x}")
    if incompat & INCOMPAT_COMPRESSION:
        if header_length <= QCOW2_V3_HEADER:
            raise ImageRejected("the qcow2 header lacks its compression type")
        kind = _read(f, QCOW2_V3_HEADER, 1)
        if kind not in (b"\x00", b"\x01"):  # zlib, zstd
            raise ImageRejected(f"unknown qcow2 compression type {kind.hex() or 'missing'}")


def _check_extensions(cluster: bytes, offset: int) -> None:
    """Walk the header extensions (all within the first cluster) to the end marker."""
    while True:
        if offset + 8 > len(cluster):
            raise ImageRejected("qcow2 header extensions run past the first cluster")
        kind, length = struct.unpack_from(">II", cluster, offset)
        offset += 8
        if kind == EXT_END:
            return
        if offset + length > len(cluster):
            raise ImageRejected(f"qcow2 header extension {kind:#010x} runs past the first cluster")
        if kind == EXT_DATA_FILE:
            name = cluster[offset:offset + min(length, 255)].decode(errors="replace")
            raise ImageRejected(f"the qcow2 image names an external data file ({name!r})")
        if kind == EXT_ENCRYPTION:
            raise ImageRejected("the qcow2 image has an encryption header")
        if kind not in EXT_ALLOWED:
            raise ImageRejected(f"the qcow2 image has an unknown header extension {kind:#010x}")
        offset += (length + 7) & ~7


def _name(f: BinaryIO, offset: int, size: int) -> str:
    """The backing file's name for the message (bounded read, never opened)."""
    if not offset or not size:
        return ""
    raw = _read(f, offset, min(size, 255))
    return f" ({raw.decode(errors='replace')!r})" if raw else ""


def _vmdk_danger(f: BinaryIO, head: bytes) -> str | None:
    """Why a VMDK would be unsafe: extents in other files, or an unsafe type."""
    if head.startswith(b"COWD"):
        return None
    if head.startswith(b"KDMV"):
        if len(head) < 44:
            return None
        desc_sector, desc_sectors = struct.unpack("<QQ", head[28:44])
        text = _read(f, desc_sector * 512, min(desc_sectors * 512, HEAD_BYTES))
    else:
        text = head
    lines = [x.strip() for x in text.rstrip(b"\0").decode(errors="replace").splitlines()]
    files = [x.split('"')[1] for x in lines
             if x.startswith(("RW ", "RDONLY ", "NOACCESS ")) and x.count('"') >= 2]
    create = next((x.split("=", 1)[1].strip().strip('"') for x in lines
                   if x.startswith("createType")), "")
    if not head.startswith(b"KDMV") and files:
        return f"its descriptor has extents in other files: {', '.join(map(repr, files))}"
    if create and create not in VMDK_SAFE_TYPES:
        return f"createType {create!r} keeps its data in other files"
    return None
