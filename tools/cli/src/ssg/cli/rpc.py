"""What the API commands share: where a service answers, whose token to send, how to show
replies and how to report a failed call (status, field violations, exit code 1)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console

from ssg.cli.config import StackConfigError, load_stack_config
from ssg.platform.auth.tokens import DevTokenIssuer, Role

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEV_ENVIRONMENTS = {"", "local", "test"}
TOKEN_ENV = "SSG_TOKEN"

# Options every API command takes (typer reads them from the command's own signature).
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target", help="host:port of the service (default: its gRPC port in the ports file)"
    ),
]
PortsOption = Annotated[
    Path | None,
    typer.Option(help="ports file (default: $SSG_PORTS_FILE or deploy/local/ports.toml)"),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar=TOKEN_ENV, help=f"bearer token to send (or ${TOKEN_ENV})"),
]
AsOption = Annotated[
    Role | None,
    typer.Option("--as", help="mint a dev token with this role (local and test environments only)"),
]
SubjectOption = Annotated[str, typer.Option(help="subject (sub) of a minted dev token")]
OrgClaimOption = Annotated[
    str, typer.Option("--org", help="organization claim of a minted member token")
]
InstanceOption = Annotated[str, typer.Option(help="instance claim of a minted dev token")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]


class CliFailure(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def resolve_target(target: str | None, ports: Path | None, service: str) -> str:
    """--target, else the service's gRPC address from the local stack's ports file."""
    if target:
        return target
    try:
        config = load_stack_config(ports)
    except StackConfigError as exc:
        raise CliFailure(f"{exc} (or pass --target host:port)") from None
    for entry in config.services:
        if entry.name == service and entry.grpc_port is not None:
            return f"{config.host}:{entry.grpc_port}"
    raise CliFailure(f"{config.source} has no [services.{service}] with a grpc port; use --target")


def resolve_token(
    token: str | None, role: Role | None, subject: str, org: str, instance: str
) -> str:
    """The token to send: --token as given, a dev token minted for --as, or '' (anonymous)."""
    if token and role:
        raise CliFailure("pass either --token or --as, not both")
    if token:
        return token
    if role is None:
        return ""
    environment = os.environ.get("SSG_ENV", "")
    if environment not in DEV_ENVIRONMENTS:
        raise CliFailure(
            f"--as mints dev tokens, which only local and test environments accept "
            f"(SSG_ENV={environment!r}); pass --token"
        )
    return DevTokenIssuer().issue(subject, [role], organization_id=org, instance=instance)


def run_call(call: Callable[[], Awaitable[T]]) -> T:
    """Run one async client action; a failed RPC is reported and exits with code 1."""
    try:
        return asyncio.run(_call(call))
    except grpc.aio.AioRpcError as exc:
        report_rpc_error(exc)
        raise typer.Exit(1) from None
    except CliFailure as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True)
        raise typer.Exit(2) from None


async def _call(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def field_violations(exc: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, reason) pairs of the google.rpc.BadRequest detail of a failed call, if any."""
    status = rpc_status.from_call(exc)
    found: list[tuple[str, str]] = []
    if status is None:
        return found
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "pass --token, or --as member|reviewer|operator on a dev stack",
    grpc.StatusCode.UNAVAILABLE: "is the service running? (`make up`, `ssg status`, or --target)",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the service did not answer in time; see `ssg status`",
    grpc.StatusCode.ABORTED: "the entity changed since you read it; read it again and retry",
}


def report_rpc_error(exc: grpc.aio.AioRpcError) -> None:
    """Print the status code, its message, each bad field and a hint, on stderr."""
    code = exc.code()
    err.print(f"[red]error:[/red] {code.name}: {exc.details() or ''}".rstrip(), markup=True)
    for field, reason in field_violations(exc):
        err.print(f"  {field}: {reason}", markup=False)
    if hint := HINTS.get(code):
        err.print(f"  hint: {hint}", markup=False)


def enum_label(wrapper: Any, number: int, prefix: str) -> str:
    """A proto enum value's name without its prefix ('' for unset, the number if unknown)."""
    if number == 0:
        return ""
    try:
        return str(wrapper.Name(number)).removeprefix(prefix)
    except ValueError:
        return str(number)


def enum_value(wrapper: Any, prefix: str, label: str) -> int:
    """The number of an enum value from its label, case-insensitively (CliFailure if unknown)."""
    name = prefix + label.strip().upper().replace("-", "_")
    try:
        return int(wrapper.Value(name))
    except ValueError:
        names = [n.removeprefix(prefix) for n in wrapper.keys() if not n.endswith("UNSPECIFIED")]  # noqa: SIM118
        raise CliFailure(f"unknown value {label!r}; one of: {', '.join(names)}") from None


def timestamp(value: Timestamp, present: bool = True) -> str:
    """ISO 8601 UTC, or '' when the field is unset."""
    if not present or (value.seconds == 0 and value.nanos == 0):
        return ""
    return value.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")


def as_json(message: Message) -> dict[str, Any]:
    """A message as a JSON-ready dict with the proto field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any) -> None:
    """Pretty JSON on stdout, nothing else (for scripts)."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_fields(pairs: Iterable[tuple[str, object]]) -> None:
    """Aligned 'key: value' lines; empty values are left out."""
    rows = [(k, v) for k, v in pairs if v not in ("", None, [], ())]
    width = max((len(k) for k, _ in rows), default=0) + 1
    for key, value in rows:
        text = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        out.print(f"{key + ':':<{width}} {text}", markup=False)


ID_WIDTH = 32  # server ids are 32 hex digits
NAME_WIDTH = 24


def column_width(column: str) -> int | None:
    """Minimum width of a table column: ids in full, names readable, the rest as rich sees fit."""
    return {"id": ID_WIDTH, "name": NAME_WIDTH}.get(column)
