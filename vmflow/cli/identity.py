"""`vmflow project|user|token ...`: projects and users (admin), tokens.

A token is for one user's project; VMFLOW_TOKEN or --token then carries it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from vmflow.cli.common import (
    Api,
    Column,
    JsonOpt,
    calls,
    col,
    emit,
    err,
    kv_table,
    list_table,
)

project_app = typer.Typer(no_args_is_help=True, help="Projects (admin).")
user_app = typer.Typer(no_args_is_help=True, help="Users and their role in a project (admin).")
token_app = typer.Typer(no_args_is_help=True, help="Tokens.")


class Role(StrEnum):
    admin = "admin"
    member = "member"
    reader = "reader"


@project_app.command("create")
@calls("POST /v1/projects")
def project_create(name: str, as_json: JsonOpt = False) -> None:
    """Admin: create a project."""
    data = Api().call("POST", "/v1/projects", json={"name": name})
    emit(data, as_json, lambda: kv_table(data))


@project_app.command("list")
@calls("GET /v1/projects")
def project_list(as_json: JsonOpt = False) -> None:
    """Admin: list projects."""
    projects = Api().items("/v1/projects", "projects")
    columns: list[Column] = [("ID", col("id")), ("Name", col("name")),
                             ("Created", col("created_at"))]
    emit(projects, as_json, lambda: list_table(projects, columns))


PasswordOpt = Annotated[str, typer.Option(
    prompt=True, hide_input=True, envvar="VMFLOW_PASSWORD",
    help="Asked for when not given (or set VMFLOW_PASSWORD).")]


@user_app.command("create")
@calls("POST /v1/users")
def user_create(
    name: str,
    project: Annotated[str, typer.Option(help="Project id or name.")],
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True, envvar="VMFLOW_PASSWORD",
        help="At least 8 characters; asked for when not given (or set VMFLOW_PASSWORD).")],
    role: Annotated[Role, typer.Option(help="admin: every project; member: changes its "
                                       "project; reader: only reads.")] = Role.member,
    as_json: JsonOpt = False,
) -> None:
    """Admin: create a user with a role in a project."""
    data = Api().call("POST", "/v1/users", json={"name": name, "password": password,
                                                 "project": project, "role": role.value})
    emit(data, as_json, lambda: kv_table(data))


@user_app.command("list")
@calls("GET /v1/users")
def user_list(as_json: JsonOpt = False) -> None:
    """Admin: list users, one line per project they belong to."""
    users = Api().items("/v1/users", "users")
    columns: list[Column] = [("ID", col("id")), ("Name", col("name")),
                             ("Project", col("project_id")), ("Role", col("role"))]
    emit(users, as_json, lambda: list_table(users, columns))


@token_app.command("issue")
@calls("POST /v1/tokens")
def token_issue(
    username: Annotated[str, typer.Option(help="User name.")],
    project: Annotated[str, typer.Option(help="Project id or name.")],
    password: PasswordOpt,
    expires_in: Annotated[int | None, typer.Option(
        min=60, help="Seconds until it expires (default: never).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A token for a user's project; use it with --token or VMFLOW_TOKEN."""
    body: dict[str, object] = {"username": username, "password": password, "project": project}
    if expires_in is not None:
        body["expires_in"] = expires_in
    data = Api().call("POST", "/v1/tokens", json=body)
    emit(data, as_json, lambda: kv_table(data))
    if not as_json:
        err().print(f"[dim]export VMFLOW_TOKEN={escape(data['token'])}[/dim]")
