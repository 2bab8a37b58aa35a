"""``ssg search reindex`` against the test servers: a new version, aliases swapped, JSON summary."""

from __future__ import annotations

import json
import uuid

from opensearchpy import OpenSearch
from typer.testing import CliRunner

from ssg.cli.main import app


def test_reindex_builds_the_next_version_and_swaps_the_aliases(kafka_server, opensearch_url):
    prefix = f"c{uuid.uuid4().hex[:8]}"
    args = ["search", "reindex", "--prefix", prefix, "--kafka", kafka_server.bootstrap]
    args += ["--opensearch", opensearch_url, "--local" if kafka_server.local else "--no-local"]
    client = OpenSearch(opensearch_url)
    try:
        first = CliRunner().invoke(app, args)
        assert first.exit_code == 0, first.output
        summary = json.loads(first.stdout)
        # No index existed: version 1 is created for the aliases, then 2 is built and swapped in.
        assert summary["version"] == 2
        assert summary["indices"]["solution"] == f"{prefix}-solution-v2"
        assert f"{prefix}-solution-v1" in summary["deleted"]
        aliases = client.indices.get_alias(name=f"{prefix}-solution")
        assert list(aliases) == [f"{prefix}-solution-v2"]
    finally:
        client.indices.delete(index=f"{prefix}-*")
        client.close()
