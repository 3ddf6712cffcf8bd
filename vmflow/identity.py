"""Tokens and passwords: only hashes are stored."""

from __future__ import annotations

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
