"""Routers stay thin: no router touches the database itself, the services do.

A router parses the request, authorizes and calls api/services/<resource>.py. This
reads every api/routers/*.py with ast (never imports it) and fails on a query, a
write or a transaction in a router, and on any import from sqlmodel or sqlalchemy
(nothing a router does needs the ORM), so the rule cannot erode one route at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUTERS = sorted((ROOT / "api" / "routers").glob("*.py"))
ORM = ("sqlmodel", "sqlalchemy")
# what a Session does: read, write, or end a transaction
SESSION_CALLS = {"exec", "execute", "get", "scalar", "scalars", "query", "add", "add_all",
                 "delete", "merge", "flush", "refresh", "commit", "rollback"}
STATEMENTS = {"select", "insert", "update", "delete"}  # sqlmodel/sqlalchemy builders
SESSION_TYPES = {"SessionDep", "Session"}


def _annotation_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def violations(source: str, filename: str = "<router>") -> list[str]:
    """Where `source` touches the database: "file:line what" for each place."""
    tree = ast.parse(source)
    # a session by its usual name, or any parameter typed as one
    sessions = {"session"} | {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)
                              and _annotation_names(a.annotation) & SESSION_TYPES}
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ORM:
            names = ", ".join(a.name for a in node.names)
            found.append(f"{where} imports {names} from {node.module}")
        elif isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names
                      if a.name.split(".")[0] in ORM]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in STATEMENTS:
                found.append(f"{where} calls {func.id}()")
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                receiver = func.value.id
                if (receiver in sessions and func.attr in SESSION_CALLS
                        or receiver in ORM and func.attr in STATEMENTS):
                    found.append(f"{where} calls {receiver}.{func.attr}()")
    return sorted(found)


def test_there_are_routers_to_check() -> None:
    assert len(ROUTERS) > 10 and all(p.suffix == ".py" for p in ROUTERS)


def test_no_router_touches_the_database() -> None:
    found = [v for path in ROUTERS
             for v in violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "move these into api/services/<resource>.py:\n" + "\n".join(found)


FAT_ROUTER = '''
import sqlalchemy
from sqlmodel import col, select
import sqlmodel

def list_things(session, auth):
    return session.exec(select(Thing).order_by(col(Thing.name))).all()

def delete_thing(thing_id: str, db: SessionDep):
    thing = db.get(Thing, thing_id)
    db.delete(thing)
    db.commit()

def create_thing(session):
    session.add(Thing())
    return sqlmodel.select(Thing)
'''


def test_the_check_sees_a_fat_router() -> None:
    """The check can fail: each kind of database access in a router is reported."""
    assert violations(FAT_ROUTER, "fat.py") == sorted([
        "fat.py:2 imports sqlalchemy",
        "fat.py:3 imports col, select from sqlmodel",
        "fat.py:4 imports sqlmodel",
        "fat.py:7 calls session.exec()",
        "fat.py:7 calls select()",
        "fat.py:10 calls db.get()",
        "fat.py:11 calls db.delete()",
        "fat.py:12 calls db.commit()",
        "fat.py:15 calls session.add()",
        "fat.py:16 calls sqlmodel.select()",
    ])


def test_the_check_lets_a_thin_router_pass() -> None:
    """Calling a service (even one named like a session method) is what routers do."""
    thin = '''
from api.services import image_members, keypairs

def add_member(image_id, body, session, auth):
    names = {"a": 1}
    names.get("a")
    keypairs.delete(session, auth, "k", None)
    return image_members.add(session, auth, image_id, body.member)
'''
    assert violations(thin) == []
