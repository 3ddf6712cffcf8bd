"""Idempotency-Key for POST /v1/tokens: a repeat gets the first request's token.

Only a token's hash is stored, so the token cannot be read back; with a key it is
derived instead (vmflow.identity.keyed_token: an HMAC keyed by the stored password
hash over the password, the user, the project and the key), and the request's
Operation row keeps the key with the token's hash. A repeat, which must give the
password again, derives the same token and finds its row; the key used for another
project's token (another hash) is refused with 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from api.errors import Conflict, Unauthorized
from vmflow.identity import hash_token, keyed_token
from vmflow.models import Operation, Token, User, now

RESOURCE = "token"


def _earlier(session: Session, user: User, project_id: str, key: str,
             token_hash: str) -> Token | None:
    """The token this key made before, if any; 409 if the key made something else."""
    op = session.exec(
        select(Operation).where(Operation.idempotency_key == key)
        .where(or_(Operation.project_id == project_id, Operation.user_id == user.id))
        .order_by(col(Operation.started_at))).first()
    if op is None:
        return None
    if (op.resource_type, op.action, op.resource_id) != (RESOURCE, "create", token_hash):
        raise Conflict(f"Idempotency-Key {key!r} was already used for {op.action} of "
                       f"{op.resource_type}", type="IdempotencyKeyReused")
    token = session.get(Token, token_hash)
    if token is None:  # revoked since: the first answer is no longer a valid token
        raise Unauthorized("the token this Idempotency-Key made is gone; use a new key")
    return token


def keyed(session: Session, user: User, password: str, project_id: str, role: str,
          key: str, expires: datetime | None) -> tuple[str, Token]:
    """(token, its row): the first request's, or a new one kept under the key."""
    token = keyed_token(password, user.password_hash, user.id, project_id, key)
    token_hash = hash_token(token)
    row = _earlier(session, user, project_id, key, token_hash)
    if row is not None:
        return token, row
    row = Token(token_hash=token_hash, user_id=user.id, project_id=project_id, role=role,
                expires_at=expires)
    session.add(row)
    session.add(Operation(resource_type=RESOURCE, resource_id=token_hash, action="create",
                          status="succeeded", workflow_id="", project_id=project_id,
                          user_id=user.id, idempotency_key=key, finished_at=now()))
    try:
        session.commit()
    except IntegrityError:  # the same request in another process committed first
        session.rollback()
        row = _earlier(session, user, project_id, key, token_hash)
        if row is None:
            raise
    return token, row
