"""What every `vmflow` command shares: the API client, name resolution, rendering and
following an operation to its end. HTTP only; never imports temporalio."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

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


ROUTES_ATTR = "__vmflow_routes__"
ROUTE_RE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/v1(/[^ ]*)?)$")
F = TypeVar("F", bound=Callable[..., Any])


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
            raise self.transport_error(e) from e
        if r.status_code >= 400:
            raise ApiError(error_message(r), r.status_code)
        return r.json() if r.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    @contextmanager
    def stream(self, method: str, path: str, **kw: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (a download), errors as call()."""
        try:
            with self.http.stream(method, path, **kw) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(error_message(r), r.status_code)
                yield r
        except httpx.TransportError as e:
            raise self.transport_error(e) from e

    def transport_error(self, e: httpx.TransportError) -> ApiError:
        if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
            return ApiError(f"cannot reach the vmflow API at {self.base} ({e}); "
                            "is the stack up? (make up)")
        return ApiError(f"the connection to the vmflow API at {self.base} failed: {e}")

    def items(self, path: str, key: str, max_pages: int = 1000) -> list[dict[str, Any]]:
        """Every item of a list, following its `next` page links (a paged list answers
        at most a page; bounded, so a server that links in circles ends)."""
        out: list[dict[str, Any]] = []
        url: str | None = path
        for _ in range(max_pages):
            data = self.get(url) if url is not None else None
            if not isinstance(data, dict):
                return out + list(data or [])
            out += data[key]
            url = data.get("next")
            if not url:
                return out
        raise ApiError(f"{path}: more than {max_pages} pages", 500)


def seg(value: str) -> str:
    """One URL path segment: a metadata key or keypair name may hold '/', '?' or '#'."""
    return urllib.parse.quote(value, safe="")


def unwrap(data: Any, key: str) -> Any:
    """`{key: obj}` -> obj; a bare obj stays as it is (the API answers either way)."""
    return data[key] if isinstance(data, dict) and isinstance(data.get(key), dict) else data


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


# ---- which routes each command calls ---------------------------------------------------


def calls(*routes: str) -> Callable[[F], F]:
    """Declare the API routes (`"METHOD /v1/path/{param}"`) a command calls; put it
    under the `@app.command(...)` line. tests/api/test_cli_coverage.py checks these
    against the OpenAPI document both ways, so a /v1 route without a command (or a
    command naming a route that is gone) fails the tests."""
    for route in routes:
        if not ROUTE_RE.match(route):
            raise ValueError(f"{route!r} is not 'METHOD /v1/path'")

    def mark(fn: F) -> F:
        setattr(fn, ROUTES_ATTR, tuple(routes))
        return fn
    return mark


def command_routes(app: typer.Typer, prefix: str = "") -> dict[str, tuple[str, ...] | None]:
    """Every command under `app` (`"image create"`, ...) and the routes it declared
    with @calls (None: it declared nothing)."""
    found: dict[str, tuple[str, ...] | None] = {}
    for cmd in app.registered_commands:
        name = cmd.name or (cmd.callback.__name__.replace("_", "-") if cmd.callback else "?")
        found[f"{prefix}{name}"] = getattr(cmd.callback, ROUTES_ATTR, None)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            found.update(command_routes(group.typer_instance, f"{prefix}{group.name} "))
    return found


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


def follow_create(api: Api, op: dict[str, Any], path: str, key: str,
                  created: dict[str, Any], as_json: bool) -> None:
    """--wait on a create: follow the operation to its end, then show the resource as
    it is now (as it was accepted if a failed create removed it); exit 1 unless the
    operation succeeded."""
    final = watch(api, op["id"])
    try:
        created = api.get(path)
    except ApiError as e:
        if e.status != 404:
            raise
    emit({key: created, "operation": final}, as_json, lambda: kv_table(created))
    finish(final)


def follow(api: Api, op: dict[str, Any], what: str, wait: bool, as_json: bool) -> None:
    """An accepted operation: print its ids, or with --wait follow it to its end and exit
    1 with its last_error unless it succeeded."""
    if not wait:
        emit(op, as_json, lambda: f"{escape(what)}: operation {op['id']} "
                                  f"(workflow {op['workflow_id']}) {styled(op['status'])}")
        return
    final = watch(api, op["id"])
    emit(final, as_json, lambda: f"{escape(what)}: {styled(final['status'])}")
    finish(final)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Follow the operation until it ends.")]
ServerArg = Annotated[str, typer.Argument(metavar="SERVER", help="Server id or unique name.")]
