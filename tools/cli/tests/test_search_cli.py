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


def _secured_env(monkeypatch, secured_opensearch, password: str) -> None:
    monkeypatch.setenv("SSG_OPENSEARCH_USERNAME", secured_opensearch.username)
    monkeypatch.setenv("SSG_OPENSEARCH_PASSWORD", password)
    monkeypatch.setenv("SSG_OPENSEARCH_CA_FILE", secured_opensearch.ca_file)


def test_reindex_through_tls_and_credentials(kafka_server, secured_opensearch, monkeypatch):
    prefix = f"c{uuid.uuid4().hex[:8]}"
    args = ["search", "reindex", "--prefix", prefix, "--kafka", kafka_server.bootstrap]
    args += ["--opensearch", secured_opensearch.url]
    args += ["--local" if kafka_server.local else "--no-local"]
    client = OpenSearch(
        secured_opensearch.url,
        http_auth=(secured_opensearch.username, secured_opensearch.password),
        ca_certs=secured_opensearch.ca_file,
    )
    try:
        _secured_env(monkeypatch, secured_opensearch, "wrong-password")
        refused = CliRunner().invoke(app, args)
        assert refused.exit_code == 1
        assert "refused the credentials" in refused.output
        assert not [name for name in client.indices.get(index="*") if name.startswith(prefix)]

        _secured_env(monkeypatch, secured_opensearch, secured_opensearch.password)
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["version"] == 2
        aliases = client.indices.get_alias(name=f"{prefix}-solution")
        assert list(aliases) == [f"{prefix}-solution-v2"]
    finally:
        client.indices.delete(index=f"{prefix}-*")
        client.close()
