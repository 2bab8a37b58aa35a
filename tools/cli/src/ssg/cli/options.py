"""The connection options every API command takes, declared once.

``@connection_options`` adds ``--target --ports --token --as --subject --org --instance`` (the
option types of ``ssg.cli.rpc``) to a typer command and hands them to it as one ``Connection``
in its ``conn`` parameter, so a command lists only its own options::

    @app.command()
    @connection_options
    def show(record_id: str, conn: Connection, json_: JsonOption = False) -> None: ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ssg.cli.rpc import (
    AsOption,
    InstanceOption,
    OrgClaimOption,
    PortsOption,
    SubjectOption,
    TargetOption,
    TokenOption,
    resolve_target,
    resolve_token,
)
from ssg.platform.auth.tokens import Role

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Connection:
    """Where a command's service answers and who the caller is (as the options said)."""

    target: str | None = None
    ports: Path | None = None
    token: str | None = None
    role: Role | None = None
    subject: str = "dev"
    org: str = ""
    instance: str = "global"

    def address(self, service: str) -> str:
        """host:port of service: --target, else its gRPC port in the ports file."""
        return resolve_target(self.target, self.ports, service)

    def bearer(self) -> str:
        """The token to send: --token, a dev token minted for --as, or '' (anonymous)."""
        return resolve_token(self.token, self.role, self.subject, self.org, self.instance)


# (parameter name, annotation, default) of the shared options, in the order help shows them.
_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("target", TargetOption, None),
    ("ports", PortsOption, None),
    ("token", TokenOption, None),
    ("as_", AsOption, None),
    ("subject", SubjectOption, "dev"),
    ("org", OrgClaimOption, ""),
    ("instance", InstanceOption, "global"),
)


def connection_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add the shared connection options to a typer command; it receives them as ``conn``."""
    own = inspect.signature(command, eval_str=True)
    if "conn" not in own.parameters:
        raise TypeError(f"{command.__name__} needs a 'conn: Connection' parameter")
    kept = [p for name, p in own.parameters.items() if name != "conn"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, kind, default in _OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        values = [kwargs.pop(name, default) for name, _, default in _OPTIONS]
        return command(*args, conn=Connection(*values), **kwargs)

    # typer reads the signature: the command's own parameters, then the shared ones.
    wrapper.__signature__ = own.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "conn"} | {
        name: kind for name, kind, _ in _OPTIONS
    }
    return wrapper
