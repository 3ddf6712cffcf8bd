"""Flavors and who may use them (Nova's flavor access).

A public flavor is everyone's. A private one (is_public false) is seen and booted only
by admins and the projects on its access list; to anybody else it does not exist
(404 on show, 400 FlavorNotFound on launch), so its name does not leak.
"""

from __future__ import annotations

from sqlmodel import Session, col, delete, func, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound
from api.schemas.flavors import FlavorAccessList, FlavorAccessPublic, FlavorCreate, FlavorPublic
from api.services.operations import find_idempotent, remember_key
from vmflow import states
from vmflow.models import Flavor, FlavorAccess, Instance, Project


def visible_flavors(auth: AuthContext) -> SelectOfScalar[Flavor]:
    """Public flavors and the private ones the caller's project was given; all for admin."""
    stmt = select(Flavor)
    if auth.is_admin:
        return stmt
    granted = select(FlavorAccess.flavor_id).where(FlavorAccess.project_id == auth.project_id)
    return stmt.where(or_(col(Flavor.is_public).is_(True), col(Flavor.id).in_(granted)))


def list_flavors(session: Session, auth: AuthContext) -> list[Flavor]:
    stmt = visible_flavors(auth).order_by(col(Flavor.ram_mb), col(Flavor.name))
    return list(session.exec(stmt))


def find_flavor(session: Session, auth: AuthContext, ref: str) -> Flavor | None:
    """By id or by name (names are unique); an id wins over another flavor's name."""
    found = list(session.exec(visible_flavors(auth).where(
        or_(Flavor.id == ref, Flavor.name == ref))))
    return next((f for f in found if f.id == ref), found[0] if found else None)


def get_flavor(session: Session, auth: AuthContext, ref: str) -> Flavor:
    flavor = find_flavor(session, auth, ref)
    if flavor is None:
        raise NotFound(f"flavor {ref} not found")
    return flavor


def resolve_flavor(session: Session, auth: AuthContext, ref: str) -> Flavor:
    """The flavor a launch asks for: one the caller may use, else 400 (as Nova)."""
    flavor = find_flavor(session, auth, ref)
    if flavor is None:
        raise BadRequest(f"flavor {ref!r} not found", type="FlavorNotFound")
    return flavor


def create_flavor(session: Session, auth: AuthContext, body: FlavorCreate,
                  key: str | None, flavor_id: str | None = None,
                  description: str | None = None) -> FlavorPublic:
    """`flavor_id` and `description`: Nova's API may choose the id and describe it."""
    earlier = find_idempotent(session, auth, key, "flavor", "create")
    if earlier is not None:
        return FlavorPublic.of(get_flavor(session, auth, earlier.resource_id))
    if session.exec(select(Flavor).where(Flavor.name == body.name)).first() is not None:
        raise Conflict(f"a flavor named {body.name!r} exists", type="FlavorExists")
    if flavor_id is not None and session.get(Flavor, flavor_id) is not None:
        raise Conflict(f"a flavor with id {flavor_id!r} exists", type="FlavorIdExists")
    flavor = Flavor(name=body.name, vcpus=body.vcpus, ram_mb=body.ram, disk_gb=body.disk,
                    is_public=body.is_public, extra_specs=body.extra_specs,
                    description=description)
    if flavor_id is not None:
        flavor.id = flavor_id
    session.add(flavor)
    remember_key(session, auth, key, "flavor", flavor.id, "create")
    session.commit()
    return FlavorPublic.of(flavor)


def delete_flavor(session: Session, auth: AuthContext, ref: str, key: str | None) -> None:
    """Refused (409) while a server uses it: its operations (rebuild, unshelve, the
    scheduler) read the flavor row, unlike Nova's copy embedded in the instance."""
    if find_idempotent(session, auth, key, "flavor", "delete"):
        return  # a repeat of a delete that went through
    flavor = get_flavor(session, auth, ref)
    users = session.exec(select(func.count()).select_from(Instance).where(
        Instance.flavor_id == flavor.id, col(Instance.deleted_at).is_(None),
        Instance.vm_state != states.VmState.DELETED)).one()
    if users:
        raise Conflict(f"flavor {flavor.name!r} is used by {users} server(s)",
                       type="FlavorInUse")
    session.exec(delete(FlavorAccess).where(col(FlavorAccess.flavor_id) == flavor.id))
    session.delete(flavor)
    remember_key(session, auth, key, "flavor", flavor.id, "delete")
    session.commit()


def set_description(session: Session, auth: AuthContext, ref: str,
                    description: str | None) -> Flavor:
    """Nova's PUT /flavors/{id} (2.55): the description is the one changeable field."""
    flavor = get_flavor(session, auth, ref)
    flavor.description = description
    session.add(flavor)
    session.commit()
    return flavor


# --- extra specs (admin only to change: the router asks for AdminDep) ---------------------


def set_extra_specs(session: Session, auth: AuthContext, ref: str,
                    specs: dict[str, str]) -> Flavor:
    """These keys set (others kept), committed. Servers already running keep theirs."""
    flavor = get_flavor(session, auth, ref)
    flavor.extra_specs = {**(flavor.extra_specs or {}), **specs}
    session.add(flavor)
    session.commit()
    return flavor


def unset_extra_spec(session: Session, auth: AuthContext, ref: str, key: str) -> None:
    flavor = get_flavor(session, auth, ref)
    specs = dict(flavor.extra_specs or {})
    if key not in specs:
        raise NotFound(f"flavor {flavor.id} has no extra spec {key!r}",
                       type="FlavorExtraSpecsNotFound")
    del specs[key]
    flavor.extra_specs = specs
    session.add(flavor)
    session.commit()


# --- access lists (admin only: the router asks for AdminDep) -----------------------------


def _private(session: Session, auth: AuthContext, ref: str) -> Flavor:
    flavor = get_flavor(session, auth, ref)
    if flavor.is_public:
        raise Conflict(f"flavor {flavor.name!r} is public: it has no access list",
                       type="FlavorIsPublic")
    return flavor


def find_project(session: Session, ref: str) -> Project | None:
    return session.get(Project, ref) or session.exec(
        select(Project).where(Project.name == ref)).first()


def access_list(session: Session, flavor: Flavor) -> FlavorAccessList:
    rows = session.exec(select(FlavorAccess).where(FlavorAccess.flavor_id == flavor.id)
                        .order_by(col(FlavorAccess.created_at)))
    return FlavorAccessList(flavor_access=[FlavorAccessPublic(flavor_id=r.flavor_id,
                                                              project_id=r.project_id)
                                           for r in rows])


def show_access(session: Session, auth: AuthContext, ref: str) -> FlavorAccessList:
    return access_list(session, _private(session, auth, ref))


def add_access(session: Session, auth: AuthContext, ref: str, project_ref: str,
               key: str | None) -> FlavorAccessList:
    """Nova's addTenantAccess: the whole list after the change."""
    flavor = _private(session, auth, ref)
    if find_idempotent(session, auth, key, "flavor", "add-access", flavor.id):
        return access_list(session, flavor)
    project = find_project(session, project_ref)
    if project is None:
        raise BadRequest(f"project {project_ref!r} not found", type="ProjectNotFound")
    if session.get(FlavorAccess, (flavor.id, project.id)) is not None:
        raise Conflict(f"project {project.id} already has access to flavor {flavor.name!r}",
                       type="FlavorAccessExists")
    session.add(FlavorAccess(flavor_id=flavor.id, project_id=project.id))
    remember_key(session, auth, key, "flavor", flavor.id, "add-access")
    session.commit()
    return access_list(session, flavor)


def remove_access(session: Session, auth: AuthContext, ref: str, project_ref: str,
                  key: str | None) -> None:
    """Nova's removeTenantAccess. Servers already running on the flavor keep running."""
    flavor = _private(session, auth, ref)
    if find_idempotent(session, auth, key, "flavor", "remove-access", flavor.id):
        return
    project = find_project(session, project_ref)
    row = project and session.get(FlavorAccess, (flavor.id, project.id))
    if not row:
        raise NotFound(f"project {project_ref} has no access to flavor {flavor.name!r}",
                       type="FlavorAccessNotFound")
    session.delete(row)
    remember_key(session, auth, key, "flavor", flavor.id, "remove-access")
    session.commit()
