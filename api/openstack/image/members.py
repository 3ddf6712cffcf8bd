"""Glance v2 image members: the owner of a shared image adds and removes projects;
each member project accepts or rejects its share itself. A facade over
api/services/image_members.py (who may do what is decided there)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response

from api.deps import SessionDep
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.image.image_views import member_view
from api.services import image_members

router = APIRouter(prefix="/v2/images/{image_id}/members")


class MemberCreate(Lenient):
    member: str


class MemberUpdate(Lenient):
    """`openstack image set --accept` also sends "member": ignored."""

    status: Literal["pending", "accepted", "rejected"]


@router.post("")
def add(image_id: str, body: MemberCreate, session: SessionDep,
        auth: OsWriterDep) -> dict[str, Any]:
    return member_view(image_members.add(session, auth, image_id, body.member, None,
                                         replay=False))


@router.get("")
def index(image_id: str, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return {"members": [member_view(m) for m in
                        image_members.listed(session, auth, image_id)],
            "schema": "/v2/schemas/members"}


@router.get("/{member_id}")
def show(image_id: str, member_id: str, session: SessionDep,
         auth: OsAuthDep) -> dict[str, Any]:
    return member_view(image_members.show(session, auth, image_id, member_id))


@router.put("/{member_id}")
def update(image_id: str, member_id: str, body: MemberUpdate, session: SessionDep,
           auth: OsWriterDep) -> dict[str, Any]:
    return member_view(image_members.answer(session, auth, image_id, member_id, body.status))


@router.delete("/{member_id}", status_code=204)
def remove(image_id: str, member_id: str, session: SessionDep,
           auth: OsWriterDep) -> Response:
    image_members.remove(session, auth, image_id, member_id, None)
    return Response(status_code=204)
