"""`vmflow keypair ...`: import or generate SSH keypairs, list, show, delete."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

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
    out,
    seg,
    unwrap,
)

keypair_app = typer.Typer(no_args_is_help=True, help="SSH keypairs for new servers.")

NameArg = Annotated[str, typer.Argument(metavar="NAME")]


def check_writable(path: Path) -> None:
    """Before asking for a key the API will not keep: can we store it at `path`?"""
    if path.exists():
        raise typer.BadParameter(f"{path} exists; refusing to overwrite a key file",
                                 param_hint="--private-key-file")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"no directory {path.parent}", param_hint="--private-key-file")


def write_private_key(path: Path, key: str) -> None:
    """Create `path` with mode 0600 from the start (never readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key.encode() if key.endswith("\n") else (key + "\n").encode())
    finally:
        os.close(fd)


@keypair_app.command("create")
@calls("POST /v1/keypairs")
def keypair_create(
    name: NameArg,
    public_key_file: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Import this public key instead of generating.")
    ] = None,
    private_key_file: Annotated[Path | None, typer.Option(
        dir_okay=False, help="Where to write a generated private key (mode 0600).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a keypair (the private key is shown once), or import a public key."""
    body: dict[str, Any] = {"name": name}
    if public_key_file:
        if private_key_file:
            raise typer.BadParameter("an imported key has no private key to write",
                                     param_hint="--private-key-file")
        body["public_key"] = public_key_file.read_text().strip()
    elif private_key_file:
        check_writable(private_key_file)
    keypair = dict(unwrap(Api().call("POST", "/v1/keypairs", json=body), "keypair"))
    private = keypair.pop("private_key", None)
    if private and private_key_file:
        try:
            write_private_key(private_key_file, private)
        except OSError as e:
            err().print(f"[red]cannot write {escape(str(private_key_file))}: {escape(str(e))}"
                        "[/red]")
            private_key_file = None  # show it below rather than lose it
    if not private or private_key_file:
        emit({"keypair": keypair}, as_json, lambda: kv_table(keypair))
        if private:
            err().print(f"private key written to {escape(str(private_key_file))} (mode 0600)")
        return
    # generated and not saved: the details on stderr, the key alone on stdout
    # (`vmflow keypair create k > k.pem` works), shown this once only
    if as_json:
        print(json.dumps({"keypair": {**keypair, "private_key": private}}, indent=2))
    else:
        err().print(kv_table(keypair))
        sys.stdout.write(private if private.endswith("\n") else private + "\n")
    err().print("[yellow]warning: save the private key now; vmflow does not keep it and "
                "cannot show it again[/yellow]")


@keypair_app.command("list")
@calls("GET /v1/keypairs")
def keypair_list(as_json: JsonOpt = False) -> None:
    """List keypairs."""
    keypairs = [unwrap(k, "keypair") for k in Api().items("/v1/keypairs", "keypairs")]
    columns: list[Column] = [("Name", col("name")), ("Fingerprint", col("fingerprint")),
                             ("Type", col("type")), ("Created", col("created_at"))]
    emit(keypairs, as_json, lambda: list_table(keypairs, columns))


@keypair_app.command("show")
@calls("GET /v1/keypairs/{name}")
def keypair_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a keypair (its public key and fingerprint)."""
    data = Api().get(f"/v1/keypairs/{seg(name)}")
    keypair = unwrap(data, "keypair")
    emit(data, as_json, lambda: kv_table(keypair))


@keypair_app.command("delete")
@calls("DELETE /v1/keypairs/{name}")
def keypair_delete(name: NameArg) -> None:
    """Delete a keypair (servers launched with it keep their key)."""
    Api().call("DELETE", f"/v1/keypairs/{seg(name)}")
    out().print(f"deleted keypair {escape(name)}")
