"""vmflow.image_inspect against a hostile corpus made by the real qemu-img: every file
is refused with a message naming what is wrong; plain images are accepted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hostile_images import Hostile, build, iso, patch_incompatible, qemu_img
from vmflow.image_inspect import ImageRejected, detect, inspect

LIMIT = 1024 * 2**30


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Hostile]:
    return {h.name: h for h in build(tmp_path_factory.mktemp("hostile"))}


CASES = [
    "qcow2 with a backing file", "qcow2 with an external data file",
    "raw declared, qcow2 backed by /etc/shadow", "qcow2 declared, raw data",
    "VMDK descriptor with an extent in another file", "VMDK sparse declared raw",
    "qcow2 of 9 PiB", "unknown incompatible feature", "corrupt bit",
    "unknown header extension", "data file extension without the bit", "encrypted qcow2",
    "qcow version 1 as qcow2", "empty file", "VHDX declared raw", "VHD (vpc) declared raw",
    "VDI declared raw", "QED declared raw", "LUKS declared raw",
]


@pytest.mark.parametrize("name", CASES)
def test_hostile_file_is_rejected_with_a_clear_message(corpus: dict[str, Hostile],
                                                       name: str) -> None:
    h = corpus[name]
    with pytest.raises(ImageRejected) as e:
        inspect(h.path, h.declared, LIMIT)
    assert h.reason in e.value.reason, e.value.reason


def test_the_corpus_is_covered() -> None:
    assert len(CASES) == len(set(CASES))


def test_the_backing_file_is_named_not_read(corpus: dict[str, Hostile]) -> None:
    h = corpus["raw declared, qcow2 backed by /etc/shadow"]
    with pytest.raises(ImageRejected) as e:
        inspect(h.path, "raw", LIMIT)
    assert "'/etc/shadow'" in e.value.reason
    assert e.value.reason == ("disk_format is raw but the data is qcow2 (the qcow2 image "
                              "has a backing file ('/etc/shadow'))")


def test_a_raw_kernel_is_no_container_format(corpus: dict[str, Hostile]) -> None:
    for declared in ("aki", "ari", "iso"):
        with pytest.raises(ImageRejected, match=f"disk_format is {declared} but the data is"):
            inspect(corpus["qcow2 with a backing file"].path, declared, LIMIT)


def test_the_limit_applies_to_raw_too(tmp_path: Path) -> None:
    f = tmp_path / "r.raw"
    f.write_bytes(b"x" * 4096)
    with pytest.raises(ImageRejected, match="absurd virtual size"):
        inspect(f, "raw", 1024)


def test_unknown_declared_format_and_symlinks_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "r.raw"
    f.write_bytes(b"x" * 4096)
    with pytest.raises(ImageRejected, match="disk_format 'vmdk' is not supported"):
        inspect(f, "vmdk", LIMIT)
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(OSError):  # O_NOFOLLOW: the path is ours, a link is a bug
        inspect(tmp_path / "link", "raw", LIMIT)


# --- good images ----------------------------------------------------------------------

def test_plain_qcow2_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "good.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", f, "3G")
    result = inspect(f, "qcow2", LIMIT)
    assert (result.format, result.virtual_size) == ("qcow2", 3 * 2**30)


def test_compressed_zstd_extended_l2_v2_and_dirty_qcow2_are_accepted(tmp_path: Path) -> None:
    zstd = tmp_path / "zstd.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compression_type=zstd,extended_l2=on",
             zstd, "1G")
    v2 = tmp_path / "v2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "1G")
    dirty = tmp_path / "dirty.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", dirty, "1G")
    patch_incompatible(dirty, 1)
    for f in (zstd, v2, dirty):
        assert inspect(f, "qcow2", LIMIT).virtual_size == 2**30


def test_qcow2_converted_with_bitmaps_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bm.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", f, "64M")
    qemu_img("bitmap", "--add", "-f", "qcow2", f, "b0")
    assert inspect(f, "qcow2", LIMIT).format == "qcow2"


def test_raw_iso_and_the_tiny_guest_are_accepted(tmp_path: Path, tiny_guest: Path) -> None:
    raw = tmp_path / "disk.raw"
    subprocess.run(["truncate", "-s", "10M", str(raw)], check=True)
    assert inspect(raw, "raw", LIMIT).virtual_size == 10 * 2**20
    image = iso(tmp_path)
    assert inspect(image, "iso", LIMIT).format == "iso"
    assert inspect(image, "raw", LIMIT).format == "iso"  # an ISO is raw data to qemu
    kernel = tmp_path / "vmlinux"
    shutil.copyfile(tiny_guest / "vmlinux.pvh", kernel)
    assert inspect(kernel, "aki", LIMIT).format == "raw"
    assert inspect(tiny_guest / "initrd.img", "ari", LIMIT).format == "raw"
    assert inspect(tiny_guest / "root.qcow2", "qcow2", LIMIT).format == "qcow2"


def test_detect_reads_the_magic_not_the_name() -> None:
    assert detect(b"QFI\xfb\0\0\0\3") == "qcow2"
    assert detect(b"# comment\n\nversion=1\n") == "vmdk"
    assert detect(b"vhdxfile") == "vhdx"
    assert detect(b"\0" * 0x8001 + b"CD001") == "iso"
    assert detect(b"ELF") == "raw"
