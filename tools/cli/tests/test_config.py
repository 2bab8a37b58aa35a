"""The ports file: the repository's own parses and agrees with the local Prometheus config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssg.cli.config import StackConfigError, find_ports_file, load_stack_config

ROOT = Path(__file__).resolve().parents[3]
SERVERS = "[servers]\nkafka = 1001\nmongodb = 1002\nopensearch = 1003\nrabbitmq = 1004\n"


def test_repository_ports_file_loads() -> None:
    config = load_stack_config(ROOT / "deploy/local/ports.toml")
    assert config.host == "127.0.0.1"
    assert config.kafka_bootstrap == f"127.0.0.1:{config.servers['kafka']}"
    assert config.mongodb_uri("catalog").endswith("/catalog?replicaSet=secantus")
    names = [s.name for s in config.services]
    assert names[0] == "diagnostics"
    assert {"registration", "registration-relay"} <= set(names)
    ports = [p for s in config.services for p in (s.grpc_port, s.metrics_port) if p]
    assert len(ports) == len(set(ports)), "two local services share a port"


def test_found_from_a_subfolder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSG_PORTS_FILE", raising=False)
    found = find_ports_file(start=ROOT / "tools" / "cli")
    assert found == ROOT / "deploy/local/ports.toml"


def test_prometheus_scrapes_every_service_metrics_port() -> None:
    config = load_stack_config(ROOT / "deploy/local/ports.toml")
    text = (ROOT / "deploy/local/prometheus.yml").read_text()
    scraped = {int(p) for p in re.findall(r'"127\.0\.0\.1:(\d+)"', text)}
    assert config.prometheus_url == f"http://127.0.0.1:{config.servers['prometheus']}"
    scraped.remove(config.servers["prometheus"])  # Prometheus scrapes itself too
    assert scraped == {s.metrics_port for s in config.services}
    assert "0.0.0.0" not in text


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[servers]\nkafka = 1\n", "lacks mongodb, opensearch, rabbitmq"),
        (SERVERS.replace("1003", '"x"'), "servers.opensearch must be a port"),
        (SERVERS + '[services.a]\nmodule = "m"\nmetrics = 1001\n', "port 1001 used by both"),
        (SERVERS + "[services.a]\nmetrics = 2000\n", "services.a.module is required"),
        ("[servers", "Expected"),
    ],
)
def test_bad_ports_file_is_named(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(text)
    with pytest.raises(StackConfigError, match=re.escape(complaint)):
        load_stack_config(path)


def test_the_rabbitmq_vhost_is_the_default_one_unless_named(tmp_path: Path) -> None:
    default = tmp_path / "default.toml"
    default.write_text(SERVERS)
    assert load_stack_config(default).amqp_url == "amqp://guest:guest@127.0.0.1:1004//"
    named = tmp_path / "named.toml"
    named.write_text('rabbitmq_vhost = "ssg/faults"\n' + SERVERS)
    assert load_stack_config(named).amqp_url == "amqp://guest:guest@127.0.0.1:1004/ssg%2Ffaults"
