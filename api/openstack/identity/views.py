"""Keystone's shapes of vmflow's identity rows: one Default domain, projects, users,
roles (admin, member, reader with stable ids) and tokens."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from api.openstack.identity.catalog import stable_id
from api.services.identity import ROLE_ORDER, aware, implied
from vmflow.models import ApplicationCredential, Project, User

DOMAIN_ID, DOMAIN_NAME = "default", "Default"
DOMAIN_REF = {"id": DOMAIN_ID, "name": DOMAIN_NAME}
ROLE_IDS = {name: stable_id("role", name) for name in ROLE_ORDER}
ROLE_NAMES = {v: k for k, v in ROLE_IDS.items()}
# a vmflow token without an expiry never expires; Keystone's clients need a date
NEVER = "9999-12-31T23:59:59.000000Z"


def iso(t: datetime | None) -> str:
    return NEVER if t is None else aware(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def links(base: str, path: str) -> dict[str, Any]:
    return {"self": f"{base}/identity/v3/{path}"}


def list_links(base: str, path: str) -> dict[str, Any]:
    return {"self": f"{base}/identity/v3/{path}", "previous": None, "next": None}


def domain(base: str) -> dict[str, Any]:
    return {"id": DOMAIN_ID, "name": DOMAIN_NAME, "description": "The default domain",
            "enabled": True, "tags": [], "options": {},
            "links": links(base, f"domains/{DOMAIN_ID}")}


def project(base: str, p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "domain_id": DOMAIN_ID, "description": "",
            "enabled": True, "is_domain": False, "parent_id": DOMAIN_ID, "tags": [],
            "options": {}, "links": links(base, f"projects/{p.id}")}


def user(base: str, u: User) -> dict[str, Any]:
    body = {"id": u.id, "name": u.name, "domain_id": DOMAIN_ID, "enabled": True,
            "password_expires_at": None, "options": {}, "links": links(base, f"users/{u.id}")}
    if u.default_project_id:
        body["default_project_id"] = u.default_project_id
    return body


def role(base: str, name: str) -> dict[str, Any]:
    return {"id": ROLE_IDS[name], "name": name, "domain_id": None, "description": None,
            "options": {}, "links": links(base, f"roles/{ROLE_IDS[name]}")}


def role_refs(held: str) -> list[dict[str, str]]:
    """The held role and those it implies, as a token lists them."""
    return [{"id": ROLE_IDS[r], "name": r} for r in implied(held) if r in ROLE_IDS]


def app_credential(base: str, c: ApplicationCredential) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "description": c.description or None,
            "user_id": c.user_id, "project_id": c.project_id,
            "expires_at": None if c.expires_at is None else iso(c.expires_at),
            "unrestricted": False, "access_rules": [],
            "roles": [{"id": ROLE_IDS[c.role], "name": c.role, "domain_id": None}],
            "links": links(base, f"users/{c.user_id}/application_credentials/{c.id}")}


def audit_id(token_hash: str) -> str:
    """Keystone's audit id: names the token in logs without being it."""
    return base64.urlsafe_b64encode(bytes.fromhex(token_hash)[:16]).rstrip(b"=").decode()


def token(*, methods: list[str], u: User, token_hash: str, issued: datetime,
          expires: datetime | None, p: Project | None = None, held: str | None = None,
          catalog: list[dict[str, Any]] | None = None,
          cred: ApplicationCredential | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "methods": methods,
        "user": {"id": u.id, "name": u.name, "domain": dict(DOMAIN_REF),
                 "password_expires_at": None},
        "audit_ids": [audit_id(token_hash)],
        "expires_at": iso(expires), "issued_at": iso(issued), "is_domain": False}
    if p is not None and held is not None:
        body["project"] = {"id": p.id, "name": p.name, "domain": dict(DOMAIN_REF)}
        body["roles"] = role_refs(held)
    if catalog is not None:
        body["catalog"] = catalog
    if cred is not None:
        body["application_credential"] = {"id": cred.id, "name": cred.name,
                                          "restricted": True}
    return {"token": body}
