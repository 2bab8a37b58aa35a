"""``ssg search``: operate the search service from a terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ssg.cli.config import StackConfigError, load_stack_config

app = typer.Typer(help="The search service: reindex.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command()
def reindex(
    prefix: Annotated[str, typer.Option(help="index prefix (SSG_INDEX_PREFIX)")] = "ssg",
    kafka: Annotated[str, typer.Option(help="Kafka bootstrap (default: the local stack's)")] = "",
    opensearch: Annotated[
        str,
        typer.Option(
            help="OpenSearch URL (default: the local stack's); a secured cluster's credentials "
            "and CA come from SSG_OPENSEARCH_USERNAME, SSG_OPENSEARCH_PASSWORD and "
            "SSG_OPENSEARCH_CA_FILE"
        ),
    ] = "",
    local: Annotated[bool, typer.Option(help="the local Kafka stand-in's profile")] = True,
    keep_old: Annotated[
        bool, typer.Option(help="keep the previous indices after the swap")
    ] = False,
    ports: Annotated[Path | None, typer.Option(help="ports file of the local stack")] = None,
) -> None:
    """Build a new index version from the topics (from the beginning), then swap the aliases
    atomically; searches keep working throughout. Prints a summary as JSON."""
    if not kafka or not opensearch:
        try:
            config = load_stack_config(ports)
        except StackConfigError as exc:
            err.print(f"[red]error:[/red] {exc} (or pass --kafka and --opensearch)")
            raise typer.Exit(2) from None
        kafka = kafka or config.kafka_bootstrap
        opensearch = opensearch or config.opensearch_url
    from opensearchpy.exceptions import AuthenticationException, ConnectionError

    from ssg.platform.settings import ConfigError

    try:
        summary = asyncio.run(_reindex(prefix, kafka, opensearch, local, keep_old))
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except AuthenticationException:
        err.print("[red]error:[/red] OpenSearch refused the credentials (HTTP 401)")
        raise typer.Exit(1) from None
    except ConnectionError as exc:
        err.print(f"[red]error:[/red] OpenSearch unreachable: {exc.error}")
        raise typer.Exit(1) from None
    out.print(json.dumps(summary, indent=2))
    if summary["rejected"]:
        raise typer.Exit(1)


async def _reindex(
    prefix: str, kafka: str, opensearch: str, local: bool, keep_old: bool
) -> dict[str, Any]:
    # Imported here: the CLI runs without the search service installed for other commands.
    from ssg.platform.settings import load_settings
    from ssg.search.bootstrap import opensearch_client
    from ssg.search.reindex import reindex as run_reindex
    from ssg.search.reindex import summary
    from ssg.search.settings import SearchSettings

    settings = load_settings(
        SearchSettings,
        index_prefix=prefix,
        kafka_bootstrap=kafka,
        kafka_local_profile=local,
        opensearch_url=opensearch,
    )
    client = opensearch_client(settings)
    columns = (
        TextColumn("replaying topics"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("reindex", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = await run_reindex(settings, client, progress=advance, keep_old=keep_old)
    finally:
        await client.close()
    return summary(report)
