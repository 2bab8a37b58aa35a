"""The ``ssg`` command: operate and use South-South Galaxy from a terminal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ssg.cli import catalog, expert, org, search, seed
from ssg.cli.config import StackConfigError, load_stack_config
from ssg.cli.status import check_all, format_result
from ssg.platform.auth.tokens import DevTokenIssuer, Role

app = typer.Typer(
    help="Operate and use South-South Galaxy from a terminal.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(org.app, name="org")
app.add_typer(expert.app, name="expert")
app.add_typer(catalog.app, name="catalog")
app.add_typer(seed.app, name="seed")
app.add_typer(search.app, name="search")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEV_ENVIRONMENTS = {"", "local", "test"}
MAX_TTL_SECONDS = 7 * 24 * 3600


@app.command()
def status(
    ports: Annotated[
        Path | None,
        typer.Option(help="ports file (default: $SSG_PORTS_FILE or deploy/local/ports.toml)"),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per check")] = 2.0,
) -> None:
    """Health of every local server and service, one line each; exit 1 if any is down."""
    try:
        config = load_stack_config(ports)
    except StackConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    results = check_all(config, timeout)
    width = max(len(r.name) for r in results) + 1
    for result in results:
        out.print(format_result(result, width))
    down = [r.name for r in results if not r.ok]
    if down:
        err.print(f"[red]down:[/red] {', '.join(down)}")
        raise typer.Exit(1)


@app.command()
def token(
    role: Annotated[
        list[Role] | None, typer.Option(help="role to grant (repeat for several)")
    ] = None,
    subject: Annotated[str, typer.Option(help="who the token names (sub)")] = "dev",
    org: Annotated[str, typer.Option(help="organization id (required for member)")] = "",
    instance: Annotated[str, typer.Option(help="regional instance")] = "global",
    region: Annotated[str, typer.Option(help="region a reviewer reviews")] = "",
    ttl: Annotated[
        int, typer.Option(min=1, max=MAX_TTL_SECONDS, help="seconds until it expires")
    ] = 3600,
    i_know_this_is_dev: Annotated[
        bool, typer.Option("--i-know-this-is-dev", help="issue even when SSG_ENV is not local")
    ] = False,
) -> None:
    """Print a dev JWT signed with the local development secret (never for production)."""
    environment = os.environ.get("SSG_ENV", "")
    if environment not in DEV_ENVIRONMENTS and not i_know_this_is_dev:
        err.print(
            f"[red]refusing:[/red] SSG_ENV={environment!r}; dev tokens are for local and test "
            "only (pass --i-know-this-is-dev to override)"
        )
        raise typer.Exit(2)
    roles = role or [Role.PUBLIC]
    if Role.MEMBER in roles and not org:
        err.print("[red]error:[/red] a member token needs --org (the member's organization id)")
        raise typer.Exit(2)
    issued = DevTokenIssuer().issue(
        subject, roles, organization_id=org, instance=instance, region=region, ttl_seconds=ttl
    )
    typer.echo(issued)
