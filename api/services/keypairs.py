"""Keypairs (Nova's os-keypairs): the caller's SSH public keys, strictly parsed.

The logic behind api/routers/keypairs.py. A keypair belongs to the user, not the
project (as in Nova); without a public_key one is generated with ssh-keygen.

An imported key must be exactly what a `.pub` file holds: one line of
`<type> <base64 blob> [comment]`, where the blob is the SSH wire encoding whose
fields match the type (RFC 4253 6.6, RFC 5656, RFC 8709). Anything else is refused
rather than stored and found broken inside a guest later.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.keypairs import KeypairCreate
from api.services.operations import remember_key
from vmflow.models import Keypair

log = logging.getLogger(__name__)

# type -> how many wire fields follow the type name
KEY_FIELDS = {
    "ssh-ed25519": 1,  # key
    "ssh-rsa": 2,  # e, n
    "ecdsa-sha2-nistp256": 2,  # curve, point
    "ecdsa-sha2-nistp384": 2,
    "ecdsa-sha2-nistp521": 2,
    "sk-ssh-ed25519@openssh.com": 2,  # key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": 3,  # curve, point, application
}
MIN_RSA_BITS = 1024  # what OpenSSH itself refuses below
KEYGEN_TIMEOUT_S = 30


class InvalidKey(ValueError):
    pass


def _fields(blob: bytes) -> list[bytes]:
    """The length-prefixed strings of an SSH wire blob; all bytes must be used."""
    out, i = [], 0
    while i < len(blob):
        if i + 4 > len(blob):
            raise InvalidKey("the key data is truncated")
        n = int.from_bytes(blob[i:i + 4], "big")
        if i + 4 + n > len(blob):
            raise InvalidKey("the key data is truncated")
        out.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    return out


def fingerprint(blob: bytes) -> str:
    """As `ssh-keygen -l` prints it: SHA256:<base64 of the digest, no padding>."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return "SHA256:" + digest.rstrip("=")


def parse_public_key(text: str) -> tuple[str, str]:
    """(the normalized key line, its fingerprint); InvalidKey with the reason."""
    line = text.strip()
    if not line or "\n" in line or "\r" in line:
        raise InvalidKey("a public key is one line: '<type> <base64 key> [comment]'")
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise InvalidKey("a public key is one line: '<type> <base64 key> [comment]'")
    key_type, b64 = parts[0], parts[1]
    if key_type not in KEY_FIELDS:
        raise InvalidKey(f"unsupported key type {key_type!r}; supported: "
                         f"{', '.join(KEY_FIELDS)}")
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("the key is not valid base64") from None
    fields = _fields(blob)
    if not fields or fields[0] != key_type.encode():
        raise InvalidKey(f"the key data is not a {key_type} key")
    if len(fields) != 1 + KEY_FIELDS[key_type]:
        raise InvalidKey(f"the key data does not have the fields of a {key_type} key")
    _check_fields(key_type, fields[1:])
    comment = f" {parts[2]}" if len(parts) == 3 else ""
    return f"{key_type} {b64}{comment}", fingerprint(blob)


def _check_fields(key_type: str, fields: list[bytes]) -> None:
    if "ed25519" in key_type:
        if len(fields[0]) != 32:
            raise InvalidKey("an ed25519 key is 32 bytes")
    elif key_type == "ssh-rsa":
        bits = int.from_bytes(fields[1], "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise InvalidKey(f"an RSA key needs at least {MIN_RSA_BITS} bits; this has {bits}")
    else:  # ecdsa: the curve named inside must be the one in the type
        curve = key_type.split("@")[0].rsplit("-", 1)[1]
        if fields[0] != curve.encode() or not fields[1]:
            raise InvalidKey(f"the key data is not a {key_type} key")


def generate(comment: str) -> tuple[str, str]:
    """A new ed25519 keypair: (private key, public key line), made by ssh-keygen in a
    private temporary directory that is removed again. Raises OSError or
    subprocess.SubprocessError if ssh-keygen is missing or fails."""
    with tempfile.TemporaryDirectory(prefix="vmflow-keygen-") as d:
        path = Path(d) / "k"
        # an argv list: the name goes to ssh-keygen as one argument, never to a shell
        subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-f", str(path),
                        "-C", comment], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=KEYGEN_TIMEOUT_S)
        return path.read_text(), path.with_suffix(".pub").read_text().strip()


# --- the user's keypairs -------------------------------------------------------------

def find(session: Session, auth: AuthContext, name: str) -> Keypair | None:
    """The caller's keypair of that name (whichever project the token is for)."""
    return session.exec(select(Keypair).where(Keypair.user_id == auth.user_id,
                                              Keypair.name == name)).first()


def get_keypair(session: Session, auth: AuthContext, name: str) -> Keypair:
    """The caller's keypair of that name, else 404."""
    kp = find(session, auth, name)
    if kp is None:
        raise NotFound(f"keypair {name!r} not found")
    return kp


def listed(session: Session, auth: AuthContext) -> list[Keypair]:
    return list(session.exec(select(Keypair).where(Keypair.user_id == auth.user_id)
                             .order_by(col(Keypair.name))))


async def create(session: Session, auth: AuthContext, body: KeypairCreate,
                 idempotency_key: str | None) -> tuple[Keypair, str | None]:
    """(the new keypair, committed; its private key if one was generated, else None).
    409 KeypairExists when the name is taken, 400 InvalidKey for a bad public key, 503
    KeygenFailed when ssh-keygen fails."""
    if find(session, auth, body.name):
        raise Conflict(f"a keypair named {body.name!r} exists", type="KeypairExists")
    private_key = None
    if body.public_key is None:
        try:
            private_key, public_key = await asyncio.to_thread(generate, body.name)
        except (OSError, subprocess.SubprocessError) as e:
            log.error("ssh-keygen failed: %s", e)
            raise ServiceUnavailable("could not generate a keypair (ssh-keygen failed)",
                                     type="KeygenFailed") from e
    else:
        public_key = body.public_key
    try:
        public_key, key_fingerprint = parse_public_key(public_key)
    except InvalidKey as e:
        raise BadRequest(f"public_key: {e}", type="InvalidKey") from None
    kp = Keypair(user_id=auth.user_id, name=body.name, public_key=public_key,
                 fingerprint=key_fingerprint, type=body.type)
    session.add(kp)
    remember_key(session, auth, idempotency_key, "keypair", kp.id, "create")
    try:
        session.commit()
    except IntegrityError:  # created by a concurrent request since the check above
        session.rollback()
        raise Conflict(f"a keypair named {body.name!r} exists",
                       type="KeypairExists") from None
    return kp, private_key


def delete(session: Session, auth: AuthContext, name: str, idempotency_key: str | None) -> None:
    """Deleted and committed, else 404. Servers launched with it keep the key."""
    kp = get_keypair(session, auth, name)
    session.delete(kp)
    remember_key(session, auth, idempotency_key, "keypair", kp.id, "delete")
    session.commit()
