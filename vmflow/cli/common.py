"""`vmflow`: the command line over the HTTP API (servers, operations, images, flavors,
hosts). It talks HTTP only and never imports temporalio; `main` still ends with
os._exit so that nothing run at interpreter exit can change the exit code."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from vmflow.settings import get_settings

POLL_S = 0.5
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
STATUS_STYLE = {"ACTIVE": "green", "ERROR": "red", "SHUTOFF": "dim", "DELETED": "dim",
                "succeeded": "green", "failed": "red", "compensated": "yellow",
                "running": "yellow", "active": "green", "error": "red"}


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message, self.status = message, status


# ---- talking to the API ---------------------------------------------------------------


@dataclass
class State:
    url: str | None = None
    token: str | None = None
    transport: httpx.BaseTransport | None = None  # tests plug in httpx.MockTransport


state = State()


def resolve_token() -> str | None:
    """--token, else VMFLOW_TOKEN (settings.token), else the admin-token file."""
    if state.token:
        return state.token
    s = get_settings()
    if s.token:
        return s.token
    try:
        return s.admin_token_file.read_text().strip() or None
    except OSError:
        return None


def error_message(r: httpx.Response) -> str:
    """The API's error.message; FastAPI's own `detail` or the raw text otherwise."""
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}: {r.text.strip()[:500]}"
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict) and body["error"].get("message"):
            return str(body["error"]["message"])
        if "detail" in body:
            return f"HTTP {r.status_code}: {body['detail']}"
    return f"HTTP {r.status_code}: {body}"


class Api:
    def __init__(self) -> None:
        self.base = (state.url or get_settings().base_url).rstrip("/")
        token = resolve_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=30.0,
                                 transport=state.transport)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise ApiError(f"cannot reach the vmflow API at {self.base} ({e}); "
                           "is the stack up? (make up)") from e
        if r.status_code >= 400:
            raise ApiError(error_message(r), r.status_code)
        return r.json() if r.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def items(self, path: str, key: str) -> list[dict[str, Any]]:
        data = self.get(path)
        return data[key] if isinstance(data, dict) else data


def is_uuid(ref: str) -> bool:
    return bool(UUID_RE.match(ref))


def find_by_name(items: list[dict[str, Any]], ref: str, kind: str) -> dict[str, Any]:
    """Exactly one item whose name is `ref`, else a clear error."""
    found = [i for i in items if i.get("name") == ref]
    if not found:
        raise ApiError(f"no {kind} named {ref!r}")
    if len(found) > 1:
        ids = ", ".join(i["id"] for i in found)
        raise ApiError(f"{len(found)} {kind}s are named {ref!r}; use an id: {ids}")
    return found[0]


def server_id(api: Api, ref: str) -> str:
    if is_uuid(ref):
        return ref
    return str(find_by_name(api.items("/v1/servers", "servers"), ref, "server")["id"])


def image_id(api: Api, ref: str) -> str:
    if is_uuid(ref):
        return ref
    return str(find_by_name(api.items("/v1/images", "images"), ref, "image")["id"])


# ---- rendering ------------------------------------------------------------------------


def _console(stream: Any, stderr: bool = False) -> Console:
    # wide when piped, so ids are never cut; created per call so captured output works
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(width=200 if wide else None, highlight=False, stderr=stderr)


def out() -> Console:
    return _console(sys.stdout)


def err() -> Console:
    return _console(sys.stderr, stderr=True)


def fmt(value: Any) -> str:
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        return value[:19].replace("T", " ")  # timestamps to the second, UTC
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def fmt_addresses(addresses: Any) -> str:
    """Nova's {network: [{addr, ...}]} as `net=10.0.0.5, ...`."""
    if not isinstance(addresses, dict) or not addresses:
        return fmt(addresses)
    return "; ".join(
        f"{net}={', '.join(str(a.get('addr', a)) if isinstance(a, dict) else str(a) for a in ips)}"
        for net, ips in addresses.items())


def fmt_size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def styled(value: Any) -> str:
    text = escape(fmt(value))
    style = STATUS_STYLE.get(str(value))
    return f"[{style}]{text}[/{style}]" if style else text


Column = tuple[str, Callable[[dict[str, Any]], str]]


def list_table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header, _ in columns:
        table.add_column(header, no_wrap=header in ("ID", "Operation"))
    for row in rows:
        table.add_row(*(get(row) for _, get in columns))
    return table


def kv_table(obj: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in obj.items():
        if key == "addresses":
            text = escape(fmt_addresses(value))
        elif key in ("status", "result") or key.endswith("_status"):
            text = styled(value)
        else:
            text = escape(fmt(value))
        table.add_row(key, text)
    return table


def col(key: str, render: Callable[[Any], str] = lambda v: escape(fmt(v))) -> Callable[
        [dict[str, Any]], str]:
    return lambda row: render(row.get(key))


def emit(data: Any, as_json: bool, render: Callable[[], Any]) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        out().print(render())


SERVER_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("Status", col("status", styled)),
    ("Task", col("task_state")), ("Host", col("host")),
    ("Networks", lambda r: escape(fmt_addresses(r.get("addresses")))),
]


def parse_properties(values: list[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--property")
        props[key] = value
    return props


# ---- waiting for an operation ---------------------------------------------------------


def describe(op: dict[str, Any]) -> str:
    text = f"{op.get('action', 'operation')}: {op.get('step') or op.get('status')}"
    if (op.get("attempt") or 1) > 1:
        text += f" (attempt {op['attempt']})"
    return text


def wait_operation(api: Api, op_id: str) -> dict[str, Any]:
    """Poll until the operation is no longer running, showing its step and progress."""
    started = time.monotonic()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.fields[pct]}"), TimeElapsedColumn())
    with Progress(*columns, console=err(), transient=False) as progress:
        task = progress.add_task("waiting", total=None, pct="")
        while True:
            try:
                op = api.get(f"/v1/operations/{op_id}")
            except ApiError as e:
                # the row may lag the 202 for a moment; the API may be restarting
                transient = e.status == 404 or e.status is None or e.status >= 502
                if transient and time.monotonic() - started < 30:
                    time.sleep(POLL_S)
                    continue
                raise
            pct = op.get("progress")
            done = op.get("status") != "running"
            if done and op.get("status") == "succeeded":
                pct = 100
            progress.update(task, description=escape(describe(op)),
                            total=100 if pct is not None else None, completed=pct or 0,
                            pct=f"{pct}%" if pct is not None else "")
            if done:
                return dict(op)
            time.sleep(POLL_S)


def watch(api: Api, op_id: str) -> dict[str, Any]:
    try:
        return wait_operation(api, op_id)
    except KeyboardInterrupt:
        err().print(f"stopped watching; the operation goes on: vmflow operation show {op_id}")
        raise typer.Exit(130) from None


def finish(op: dict[str, Any]) -> None:
    """Exit 1 with the operation's error unless it succeeded."""
    if op.get("status") != "succeeded":
        err().print(f"[red]operation {escape(op['id'])} {escape(str(op.get('status')))}: "
                    f"{escape(str(op.get('last_error') or 'no error recorded'))}[/red]")
        raise typer.Exit(1)


# ---- commands -------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="vmflow: VMs whose every operation is a durable Temporal workflow.")
server_app = typer.Typer(no_args_is_help=True, help="Servers (instances).")
operation_app = typer.Typer(no_args_is_help=True, help="Operations (workflow runs).")
image_app = typer.Typer(no_args_is_help=True, help="Images.")
flavor_app = typer.Typer(no_args_is_help=True, help="Flavors.")
host_app = typer.Typer(no_args_is_help=True, help="Hypervisor hosts (admin).")
app.add_typer(server_app, name="server")
app.add_typer(operation_app, name="operation")
app.add_typer(image_app, name="image")
app.add_typer(flavor_app, name="flavor")
app.add_typer(host_app, name="host")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Follow the operation until it ends.")]


@app.callback()
def root(
    url: Annotated[str | None, typer.Option(help="API URL (default: VMFLOW_API_URL or "
                                            "http://127.0.0.1:$VMFLOW_API_PORT)")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token (default: VMFLOW_TOKEN "
                                              "or $VMFLOW_HOME/admin-token)")] = None,
) -> None:
    state.url, state.token = url or state.url, token or state.token


@server_app.command("create")
def server_create(
    name: str,
    image: Annotated[str, typer.Option(help="Image id or name.")],
    flavor: Annotated[str, typer.Option(help="Flavor id or name.")],
    key_name: Annotated[str | None, typer.Option(help="Keypair name.")] = None,
    prop: Annotated[list[str] | None, typer.Option(
        "--property", metavar="KEY=VALUE", help="Metadata; repeatable.")] = None,
    user_data: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="File passed to the guest (sent base64, as Nova).")
    ] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Launch a server."""
    body: dict[str, Any] = {"name": name, "image": image, "flavor": flavor}
    if key_name:
        body["key_name"] = key_name
    if prop:
        body["metadata"] = parse_properties(prop)
    if user_data:
        body["user_data"] = base64.b64encode(user_data.read_bytes()).decode()
    api = Api()
    resp = api.call("POST", "/v1/servers", json=body)
    server, op = resp["server"], resp["operation"]
    if not wait:
        emit(resp, as_json, lambda: kv_table(server))
        if not as_json:
            out().print(f"operation {op['id']} ({op['workflow_id']}): {styled(op['status'])}")
        return
    final = watch(api, op["id"])
    try:
        server = api.get(f"/v1/servers/{server['id']}")
    except ApiError as e:
        if e.status != 404:  # a failed launch may have removed it
            raise
    emit({"server": server, "operation": final}, as_json, lambda: kv_table(server))
    finish(final)


@server_app.command("list")
def server_list(as_json: JsonOpt = False) -> None:
    """List servers."""
    servers = Api().items("/v1/servers", "servers")
    emit(servers, as_json, lambda: list_table(servers, SERVER_COLUMNS))


@server_app.command("show")
def server_show(server: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
                as_json: JsonOpt = False) -> None:
    """Show one server."""
    api = Api()
    data = api.get(f"/v1/servers/{server_id(api, server)}")
    emit(data, as_json, lambda: kv_table(data))


@server_app.command("delete")
def server_delete(server: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
                  wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Delete a server."""
    api = Api()
    sid = server_id(api, server)
    op = api.call("DELETE", f"/v1/servers/{sid}")["operation"]
    if not wait:
        emit(op, as_json, lambda: f"deleting server {sid}: operation {op['id']} "
                                  f"({op['workflow_id']}) {styled(op['status'])}")
        return
    final = watch(api, op["id"])
    emit(final, as_json, lambda: f"server {sid}: delete {styled(final['status'])}")
    finish(final)


@server_app.command("actions")
def server_actions(server: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
                   as_json: JsonOpt = False) -> None:
    """A server's action history (like Nova's instance actions)."""
    api = Api()
    actions = api.items(f"/v1/servers/{server_id(api, server)}/actions", "actions")
    columns: list[Column] = [
        ("Action", col("action")), ("Result", col("result", styled)), ("Start", col("start")),
        ("Finish", col("finish")), ("User", lambda r: escape(fmt(r.get("user") or
                                                                 r.get("user_id")))),
        ("Operation", col("operation_id")), ("Fault", col("fault")),
    ]
    emit(actions, as_json, lambda: list_table(actions, columns))


@operation_app.command("show")
def operation_show(operation_id: Annotated[str, typer.Argument(metavar="ID")],
                   as_json: JsonOpt = False) -> None:
    """Show an operation: status, step, progress, attempt, last error."""
    data = Api().get(f"/v1/operations/{operation_id}")
    emit(data, as_json, lambda: kv_table(data))


@image_app.command("list")
def image_list(as_json: JsonOpt = False) -> None:
    """List images."""
    images = Api().items("/v1/images", "images")
    columns: list[Column] = [
        ("ID", col("id")), ("Name", col("name")), ("Status", col("status", styled)),
        ("Format", col("disk_format")), ("Size", col("size", fmt_size)),
        ("Visibility", col("visibility")),
    ]
    emit(images, as_json, lambda: list_table(images, columns))


@image_app.command("show")
def image_show(image: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
               as_json: JsonOpt = False) -> None:
    """Show one image."""
    api = Api()
    data = api.get(f"/v1/images/{image_id(api, image)}")
    emit(data, as_json, lambda: kv_table(data))


@flavor_app.command("list")
def flavor_list(as_json: JsonOpt = False) -> None:
    """List flavors."""
    flavors = Api().items("/v1/flavors", "flavors")
    columns: list[Column] = [
        ("ID", col("id")), ("Name", col("name")), ("vCPUs", col("vcpus")),
        ("RAM (MiB)", col("ram")), ("Disk (GB)", col("disk")), ("Public", col("is_public")),
        ("Extra specs", col("extra_specs")),
    ]
    emit(flavors, as_json, lambda: list_table(flavors, columns))


def used_of(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda h: f"{(h.get('used') or {}).get(key, '-')} / {h.get(key, '-')}"


@host_app.command("list")
def host_list(as_json: JsonOpt = False) -> None:
    """List hypervisor hosts with capacity, usage and liveness."""
    hosts = Api().items("/v1/hosts", "hosts")
    columns: list[Column] = [
        ("Name", col("name")), ("Hostname", col("hostname")),
        ("Alive", lambda h: "[green]yes[/green]" if h.get("alive") else "[red]no[/red]"),
        ("Virt", col("virt_type")), ("vCPUs used", used_of("vcpus")),
        ("RAM MiB used", used_of("ram_mb")), ("Disk GB used", used_of("disk_gb")),
        ("Instances", col("instances")), ("Traits", col("traits")),
    ]
    emit(hosts, as_json, lambda: list_table(hosts, columns))


# ---- entry point ----------------------------------------------------------------------


def run(args: list[str]) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 failure, 2 usage."""
    try:
        app(args=args, prog_name="vmflow")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except ApiError as e:
        err().print(f"[red]error: {escape(e.message)}[/red]")
        return 1
    return 0


def main() -> None:
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `vmflow server list | head`
        pass
    os._exit(code)
