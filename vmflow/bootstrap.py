"""First-run state: schema, the admin project/user/token, the hosts' service token,
default flavors, the default share type, and the tiny guest registered as images
(kernel and ramdisk as their own images referenced by kernel_id / ramdisk_id, as
Glance does). Idempotent: run by every `make up`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sqlmodel import Session, select

from vmflow import db
from vmflow.identity import SERVICE_PROJECT, SERVICE_ROLE, SERVICE_USER, hash_token, new_token
from vmflow.models import Flavor, Image, Membership, Project, ShareType, Token, User
from vmflow.settings import Settings, get_settings

# the ops guide's default flavors, plus t1.micro for tests: (name, vcpus, ram MiB, disk GB)
DEFAULT_FLAVORS = [
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
    ("m1.xlarge", 8, 16384, 160),
    ("t1.micro", 1, 256, 1),
]

# Manila's default share type: shares without a type get it
DEFAULT_SHARE_TYPE = "default"
DEFAULT_SHARE_TYPE_SPECS = {"snapshot_support": "True", "driver_handles_share_servers": "False"}

# (image name, file in the guest build, disk_format)
TINY_FILES = [
    ("tiny-kernel", "vmlinux.pvh", "aki"),
    ("tiny-ramdisk", "initrd.img", "ari"),
    ("tiny", "root.qcow2", "qcow2"),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_identity(session: Session, project_name: str, user_name: str, role: str,
                    token_file: Path) -> None:
    """A project, a user with `role` in it, and a token kept (0600) in `token_file`."""
    project = session.exec(select(Project).where(Project.name == project_name)).first()
    if project is None:
        project = Project(name=project_name)
        session.add(project)
    user = session.exec(select(User).where(User.name == user_name)).first()
    if user is None:
        user = User(name=user_name)
        session.add(user)
    session.flush()
    if session.get(Membership, (user.id, project.id)) is None:
        session.add(Membership(user_id=user.id, project_id=project.id, role=role))
    kept = token_file.read_text().strip() if token_file.exists() else ""
    if kept and session.get(Token, hash_token(kept)) is not None:
        return
    token = new_token()
    session.add(Token(token_hash=hash_token(token), user_id=user.id, project_id=project.id,
                      role=role))
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")


def ensure_admin(session: Session, s: Settings) -> None:
    ensure_identity(session, "admin", "admin", "admin", s.admin_token_file)


def ensure_service(session: Session, s: Settings) -> None:
    """The hypervisor hosts' identity: it may only fetch images and upload snapshot
    files (api/auth.py SERVICE_ROUTES); it has no password, so no other way in."""
    ensure_identity(session, SERVICE_PROJECT, SERVICE_USER, SERVICE_ROLE, s.service_token_file)


def ensure_flavors(session: Session) -> None:
    for name, vcpus, ram, disk in DEFAULT_FLAVORS:
        if session.exec(select(Flavor).where(Flavor.name == name)).first() is None:
            session.add(Flavor(name=name, vcpus=vcpus, ram_mb=ram, disk_gb=disk))


def ensure_share_type(session: Session) -> None:
    """The default share type, made once; an operator's later edits of it are kept."""
    if session.exec(select(ShareType).where(ShareType.name == DEFAULT_SHARE_TYPE)).first() is None:
        session.add(ShareType(name=DEFAULT_SHARE_TYPE, extra_specs=dict(DEFAULT_SHARE_TYPE_SPECS)))


def store_file(s: Settings, image_id: str, src: Path) -> Path:
    s.image_store.mkdir(parents=True, exist_ok=True)
    dst = s.image_store / image_id
    tmp = dst.with_suffix(".part")
    shutil.copyfile(src, tmp)
    tmp.rename(dst)
    return dst


def ensure_tiny_images(session: Session, s: Settings) -> None:
    ids: dict[str, str] = {}
    for name, filename, disk_format in TINY_FILES:
        image = session.exec(
            select(Image).where(Image.name == name, Image.status == "active")
        ).first()
        if image is None:
            image = Image(name=name, disk_format=disk_format, visibility="public",
                          container_format=disk_format if disk_format in ("aki", "ari") else "bare")
            path = store_file(s, image.id, s.guest_cache / filename)
            image.location, image.size = str(path), path.stat().st_size
            image.checksum, image.status = sha256_file(path), "active"
            session.add(image)
        ids[name] = image.id
    root = session.exec(select(Image).where(Image.id == ids["tiny"])).one()
    props = {
        "kernel_id": ids["tiny-kernel"],
        "ramdisk_id": ids["tiny-ramdisk"],
        "os_command_line": "console=ttyS0 quiet",
        "hw_qemu_guest_agent": "yes",
    }
    if root.properties != props:
        root.properties = props
        session.add(root)


def bootstrap(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    s.home.mkdir(parents=True, exist_ok=True)
    s.home.chmod(0o755)  # qemu (libvirt-qemu) must traverse to instance disks
    db.upgrade(s.db_url)
    with Session(db.engine_for(s.db_url), expire_on_commit=False) as session:
        ensure_admin(session, s)
        ensure_service(session, s)
        ensure_flavors(session)
        ensure_share_type(session)
        if (s.guest_cache / ".done").exists():
            ensure_tiny_images(session, s)
        session.commit()


if __name__ == "__main__":
    bootstrap()
