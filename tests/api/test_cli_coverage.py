"""The CLI covers the whole /v1 API: every route in the OpenAPI document has a command
that declares it (vmflow.cli.common.calls), unless it is listed below as deliberately
CLI-less; every route a command declares exists; every command declares its routes."""

from __future__ import annotations

import re

import typer

from api.app import create_app
from vmflow.cli import app
from vmflow.cli.common import command_routes

# (method, path) of /v1 routes no command calls, each with the reason
CLI_LESS = {
    # hosts only (the service role): a host that shares the image store's file system
    # adopts the data it staged there instead of uploading it
    ("POST", "/v1/images/{image_id}/import"),
    # Nova's one-key form of `vmflow server set SERVER --property KEY=VALUE`
    ("PUT", "/v1/servers/{server_id}/metadata/{key}"),
}

# commands that call no route, each with the reason
LOCAL = {
    # `ip netns exec` into the embedded stack's outside-world namespace on this machine
    "admin outside",
}

PARAM = re.compile(r"\{[^}]*\}")


def api_routes() -> set[tuple[str, str]]:
    paths = create_app().openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if path.startswith("/v1/")
            for method in ops}


def cli_routes() -> set[tuple[str, str]]:
    declared = command_routes(app)
    return {(r.split(" ", 1)[0], r.split(" ", 1)[1]) for routes in declared.values()
            for r in routes or ()}


def normal(route: tuple[str, str]) -> tuple[str, str]:
    """Path parameters compared by place, not name ({id} is {image_id})."""
    return route[0], PARAM.sub("{}", route[1])


def mismatches(api: set[tuple[str, str]], cli: set[tuple[str, str]],
               cli_less: set[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[tuple[str, str]],
                                                        set[tuple[str, str]]]:
    """(API routes no command calls and not listed CLI-less, routes commands name that
    the API does not have, CLI-less entries the API does not have or a command calls)."""
    api_n = {normal(r): r for r in api}
    cli_n = {normal(r): r for r in cli}
    less_n = {normal(r): r for r in cli_less}
    uncovered = {r for n, r in api_n.items() if n not in cli_n and n not in less_n}
    unknown = {r for n, r in cli_n.items() if n not in api_n}
    stale = {r for n, r in less_n.items() if n not in api_n or n in cli_n}
    return uncovered, unknown, stale


def test_every_command_declares_its_routes() -> None:
    undeclared = sorted(name for name, routes in command_routes(app).items()
                        if not routes and name not in LOCAL)
    assert undeclared == [], f"add @calls(...) to: {undeclared}"


def test_every_v1_route_has_a_command_and_every_declared_route_exists() -> None:
    uncovered, unknown, stale = mismatches(api_routes(), cli_routes(), CLI_LESS)
    assert uncovered == set(), (
        f"/v1 routes with no CLI command: {sorted(uncovered)}; add a command (with "
        "@calls) or list the route in CLI_LESS with the reason")
    assert unknown == set(), f"commands name routes the API does not have: {sorted(unknown)}"
    assert stale == set(), f"CLI_LESS entries to remove: {sorted(stale)}"


def test_the_check_sees_a_missing_command_and_a_missing_route() -> None:
    """The comparison fails both ways: a route whose command is gone, a command whose
    route is gone, a CLI-less entry that is stale."""
    api, cli = api_routes(), cli_routes()
    flavor_access = ("POST", "/v1/flavors/{flavor_ref}/access")
    assert flavor_access in api and flavor_access in cli
    uncovered, _, _ = mismatches(api, cli - {flavor_access}, CLI_LESS)
    assert uncovered == {flavor_access}
    _, unknown, _ = mismatches(api - {flavor_access}, cli, CLI_LESS)
    assert unknown == {flavor_access}
    uncovered, _, _ = mismatches(api, cli, CLI_LESS - {("POST", "/v1/images/{image_id}/import")})
    assert uncovered == {("POST", "/v1/images/{image_id}/import")}
    _, _, stale = mismatches(api, cli, CLI_LESS | {flavor_access, ("GET", "/v1/gone")})
    assert stale == {flavor_access, ("GET", "/v1/gone")}
    assert command_routes(app)["flavor access-add"] == ("POST /v1/flavors/{flavor_ref}/access",)


def test_a_command_without_calls_is_seen() -> None:
    extra = typer.Typer()

    @extra.command("bare")
    def bare() -> None:
        """A command that forgot @calls."""

    root = typer.Typer()
    root.add_typer(extra, name="group")
    assert command_routes(root) == {"group bare": None}
