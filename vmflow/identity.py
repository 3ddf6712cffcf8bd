"""Tokens and passwords: only hashes are stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

ROLES = ("admin", "member", "reader")

# the hypervisor hosts' identity for the image service (bootstrap.ensure_service); its
# role is not one a user can be given through the API
SERVICE_ROLE = "service"
SERVICE_PROJECT = "service"
SERVICE_USER = "vmflow-service"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, _ = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt_hex)), stored)


def keyed_token(password: str, password_hash: str, user_id: str, project_id: str,
                idempotency_key: str) -> str:
    """The token a token request with an Idempotency-Key gets, the same on every repeat.
    An HMAC keyed by the stored password hash over the password itself: a stolen token
    gives no offline guess at the password (the hash's random salt is not in it), and
    the database alone cannot give a token back (the password is not in it)."""
    msg = "\0".join(("vmflow-token", password, user_id, project_id, idempotency_key))
    digest = hmac.new(password_hash.encode(), msg.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
