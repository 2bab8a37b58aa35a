"""k8s/: every overlay renders, validates, and keeps the platform's rules (issue: Kubernetes).

Objects with a Kubernetes schema are validated by kubernetes-validate; the operators' resources
(no schema there) are checked here for the fields the platform relies on.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.platform.grpc.server import LIVENESS_SERVICE

ROOT = Path(__file__).resolve().parents[2]
Doc = dict[str, Any]
INSTANCES = ["global", "arab-states-europe-cis", "asia-pacific"]
OVERLAYS = [*INSTANCES, "dev"]
# Operators' resources the manifests use; anything else without a schema is a mistake.
CUSTOM_KINDS = {
    "ScaledObject",
    "Kafka",
    "KafkaNodePool",
    "KafkaTopic",
    "KafkaMirrorMaker2",
    "MongoDBCommunity",
    "OpenSearchCluster",
    "RabbitmqCluster",
    "User",
    "Permission",
    "PodMonitor",
    "PrometheusRule",
}
# DESIGN.md section 1: entity topics carry full state and are compacted; the rest are streams.
ENTITY_TOPICS = {
    "registration.organization-events.v1",
    "registration.expert-events.v1",
    "catalog.solution-events.v1",
    "catalog.need-events.v1",
    "catalog.knowledge-events.v1",
    "catalog.funding-events.v1",
}
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|TOKEN|KEY|URI|AMQP_URL", re.I)
# Addresses a pod sending out of the cluster (webhooks, SMTP) must never reach.
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"}


@dataclass(frozen=True)
class Process:
    """What one process talks to (its service's README) and what scales it."""

    egress: frozenset[str]  # mongodb (its own), kafka, rabbitmq, opensearch, internet
    scaler: str  # hpa (gRPC), kafka or rabbitmq (KEDA trigger), fixed (relay lease)


def _process(scaler: str, *egress: str) -> Process:
    return Process(frozenset(egress), scaler)


# Every Deployment of an instance and the flows DESIGN.md and the services' READMEs give it.
PROCESSES = {
    "registration-api": _process("hpa", "mongodb"),
    "registration-relay": _process("fixed", "mongodb", "kafka"),
    # Ingress proposals in, pending organizations and experts (and their outbox) out.
    "registration-worker": _process("kafka", "mongodb", "kafka"),
    "catalog-api": _process("hpa", "mongodb"),
    "catalog-relay": _process("fixed", "mongodb", "kafka"),
    "catalog-worker": _process("kafka", "mongodb", "kafka"),
    "notifications-api": _process("hpa", "mongodb"),
    # Matcher (Kafka), dispatcher and results consumer (RabbitMQ), delivery log (MongoDB).
    "notifications-worker": _process("kafka", "mongodb", "kafka", "rabbitmq"),
    # nameko: tasks from RabbitMQ, e-mail and webhooks out of the cluster; no MongoDB driver.
    "notifications-delivery": _process("rabbitmq", "rabbitmq", "internet"),
    "notifications-relay": _process("fixed", "mongodb", "kafka"),
    "ingress-bridge": _process("rabbitmq", "rabbitmq", "kafka"),
    "recommendation-api": _process("hpa", "mongodb"),
    "recommendation-worker": _process("kafka", "mongodb", "kafka"),
    "recommendation-relay": _process("fixed", "mongodb", "kafka"),
    # Reads the indices; publishes SearchPerformed straight to Kafka (no outbox, no MongoDB).
    "search-api": _process("hpa", "opensearch", "kafka"),
    # The faust indexer: entity topics in, the indices (and .dlq topics) out.
    "search-worker": _process("kafka", "opensearch", "kafka"),
}


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def container(deployment: Doc) -> Doc:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def config_values(docs: list[Doc], deployment: Doc) -> dict[str, str]:
    """The SSG_* values a Deployment's container gets from its ConfigMaps."""
    values: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        values.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    return values


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels / matchExpressions) selects labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
    return True


def topics_file() -> list[str]:
    lines = (ROOT / "deploy/local/topics.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def docs(rendered: dict[str, list[Doc]], overlay: str) -> list[Doc]:
    return rendered[overlay]


def deployments(docs: list[Doc]) -> Iterator[Doc]:
    yield from of_kind(docs, "Deployment")


# --- rendering and schemas ----------------------------------------------------------------


def test_the_instances_and_dev_have_overlays(manifests: Any) -> None:
    assert set(OVERLAYS) == set(manifests.overlays())


def test_every_object_validates_and_only_known_operators_resources_lack_a_schema(
    manifests: Any, docs: list[Doc]
) -> None:
    problems, custom = manifests.validate(docs)
    assert problems == []
    assert {d["kind"] for d in custom} <= CUSTOM_KINDS
    assert len(docs) - len(custom) > 30  # most objects did meet a schema


def test_the_validator_rejects_what_kubernetes_would(manifests: Any, docs: list[Doc]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(next(deployments(docs))))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "x"
    problems, _ = manifests.validate([broken])
    assert len(problems) == 1


def test_every_object_is_in_the_instance_namespace(docs: list[Doc], overlay: str) -> None:
    namespace = named(docs, "Namespace", f"ssg-{overlay}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == f"ssg-{overlay}", doc["metadata"]["name"]


def test_the_instance_settings_reach_every_process(docs: list[Doc], overlay: str) -> None:
    for deployment in deployments(docs):
        values = config_values(docs, deployment)
        assert values["SSG_INSTANCE"] == overlay
        assert values["SSG_LANGUAGES"].split(",")[0]
        assert values["SSG_SERVICE"] == pod_labels(deployment)["app.kubernetes.io/name"]
        assert values["SSG_GRPC_HOST"] == "0.0.0.0"


# --- pods ------------------------------------------------------------------------------------


def test_pods_are_hardened_and_bounded(docs: list[Doc]) -> None:
    for deployment in deployments(docs):
        pod = deployment["spec"]["template"]["spec"]
        app = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        assert app["securityContext"]["runAsNonRoot"] is True
        assert app["securityContext"]["readOnlyRootFilesystem"] is True
        assert app["securityContext"]["allowPrivilegeEscalation"] is False
        assert app["securityContext"]["capabilities"]["drop"] == ["ALL"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(app["resources"][bound]), deployment["metadata"]


def test_each_process_runs_a_module_that_exists(docs: list[Doc]) -> None:
    for deployment in deployments(docs):
        app = container(deployment)
        service = config_values(docs, deployment)["SSG_SERVICE"]
        assert app["image"] == f"ssg-{service}"
        command = app.get("command", ["python", "-m", f"ssg.{service}"])  # the image's CMD
        assert command[:2] == ["python", "-m"]
        assert importlib.util.find_spec(command[2]) is not None, command


def test_every_process_of_the_local_stack_is_deployed_and_nothing_else(docs: list[Doc]) -> None:
    """deploy/local/ports.toml lists every service process; each is one Deployment here."""
    local = tomllib.loads((ROOT / "deploy/local/ports.toml").read_text())["services"]
    wanted = {
        (entry.get("service", name), entry["module"])
        for name, entry in local.items()
        if entry["module"] != "ssg.platform.diagnostics"  # a local tool, not a service
    }
    deployed = {
        (
            config_values(docs, d)["SSG_SERVICE"],
            container(d).get(
                "command", ["python", "-m", f"ssg.{pod_labels(d)['app.kubernetes.io/name']}"]
            )[2],
        )
        for d in deployments(docs)
    }
    assert deployed == wanted
    assert {d["metadata"]["name"] for d in deployments(docs)} == set(PROCESSES)


def test_each_process_accepts_its_settings(
    docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMaps' values and a value for every Secret reference load without error in the
    service's settings class (a misspelt or out-of-range SSG_* fails here, not in the pod)."""
    from ssg.platform.settings import PlatformSettings, load_settings

    for deployment in deployments(docs):
        service = pod_labels(deployment)["app.kubernetes.io/name"]
        module = importlib.import_module(f"ssg.{service}.settings")
        (settings_class,) = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, PlatformSettings) and v is not PlatformSettings
        ]
        with monkeypatch.context() as env:
            for key in [k for k in os.environ if k.startswith("SSG_")]:
                env.delenv(key)
            for key, value in config_values(docs, deployment).items():
                env.setenv(key, value)
            for var in container(deployment).get("env", []):
                env.setenv(var["name"], "x" * 32 if "valueFrom" in var else var["value"])
            settings = load_settings(settings_class)
        assert settings.service == service


def test_grpc_processes_probe_the_standard_health_service_on_their_port(docs: list[Doc]) -> None:
    apis = [d for d in deployments(docs) if _ports(d).get("grpc")]
    assert len(apis) >= 2
    for deployment in apis:
        app = container(deployment)
        port = _ports(deployment)["grpc"]
        assert str(port) == config_values(docs, deployment)["SSG_GRPC_PORT"]
        # Readiness: the overall status (every dependency); liveness: the process answers.
        assert app["readinessProbe"]["grpc"] == {"port": port}
        assert app["livenessProbe"]["grpc"] == {"port": port, "service": LIVENESS_SERVICE}
        assert app["startupProbe"]["grpc"]["port"] == port


def test_other_processes_probe_their_metrics_port(docs: list[Doc]) -> None:
    for deployment in deployments(docs):
        if _ports(deployment).get("grpc"):
            continue
        app = container(deployment)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert app[probe]["httpGet"]["port"] in _ports(deployment), probe


def test_termination_grace_outlasts_the_drain(docs: list[Doc]) -> None:
    for deployment in deployments(docs):
        pod = deployment["spec"]["template"]["spec"]
        drain = float(config_values(docs, deployment)["SSG_GRACE_SECONDS"])
        pre_stop = container(deployment).get("lifecycle", {}).get("preStop", {})
        drain += pre_stop.get("sleep", {}).get("seconds", 0)
        assert pod["terminationGracePeriodSeconds"] > drain, deployment["metadata"]["name"]


def test_every_process_has_its_service_account_and_disruption_budget(docs: list[Doc]) -> None:
    accounts = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    budgets = of_kind(docs, "PodDisruptionBudget")
    for deployment in deployments(docs):
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in accounts
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert selects(deployment["spec"]["selector"], pod_labels(deployment))


def test_api_services_route_to_their_own_pods_only(docs: list[Doc]) -> None:
    pods = {d["metadata"]["name"]: pod_labels(d) for d in deployments(docs)}
    for service in of_kind(docs, "Service"):
        chosen = [
            n
            for n, labels in pods.items()
            if selects({"matchLabels": service["spec"]["selector"]}, labels)
        ]
        assert chosen == [service["metadata"]["name"]]
        assert service["spec"]["ports"][0]["targetPort"] == "grpc"


def _ports(deployment: Doc) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}


# --- scaling ---------------------------------------------------------------------------------


def test_grpc_processes_scale_on_an_hpa_and_consumers_on_keda(docs: list[Doc]) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    keda = {
        s["spec"]["scaleTargetRef"]["name"]: {t["type"] for t in s["spec"]["triggers"]}
        for s in of_kind(docs, "ScaledObject")
    }
    apis = {d["metadata"]["name"] for d in deployments(docs) if _ports(d).get("grpc")}
    assert hpas == apis == {n for n, p in PROCESSES.items() if p.scaler == "hpa"}
    assert keda == {
        n: {p.scaler} for n, p in PROCESSES.items() if p.scaler in ("kafka", "rabbitmq")
    }
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_keda_never_scales_a_consumer_past_its_topics_partitions(
    docs: list[Doc], overlay: str
) -> None:
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic")
    }
    bootstrap = next(config_values(docs, d)["SSG_KAFKA_BOOTSTRAP"] for d in deployments(docs))
    # KEDA's operator resolves it from its own namespace: fully qualified.
    assert bootstrap.endswith(f".ssg-{overlay}.svc:9092"), bootstrap
    for scaled in _scaled_by(docs, "kafka"):
        target = named(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        topics = []
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert meta["topic"] in partitions, meta["topic"]
            assert scaled["spec"]["maxReplicaCount"] <= partitions[meta["topic"]]
            assert meta["bootstrapServers"] == bootstrap
            assert meta["consumerGroup"] and meta["consumerGroup"] != "set-by-the-service"
            assert int(meta["lagThreshold"]) > 0
            topics.append(meta["topic"])
        # One trigger per topic, on the group that consumes it (the catalog worker runs two
        # groups; the per-worker tests below check each group against the process's settings).
        assert len(topics) == len(set(topics)), topics
        assert target["spec"]["template"]["spec"]["containers"][0]["command"]


def test_rabbitmq_consumers_scale_on_their_queues_reading_the_broker_from_a_secret(
    docs: list[Doc],
) -> None:
    for scaled in _scaled_by(docs, "rabbitmq"):
        target = named(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        env = {var["name"]: var for var in container(target)["env"]}
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert meta["mode"] == "QueueLength" and int(meta["value"]) > 0
            assert meta["queueName"] and meta["queueName"] != "set-by-the-service"
            # The address (with credentials) comes from the pod's own Secret reference.
            assert env[meta["hostFromEnv"]]["valueFrom"]["secretKeyRef"]["name"]
            assert meta["protocol"] == "amqp"


def _scaled_by(docs: list[Doc], trigger: str) -> list[Doc]:
    """ScaledObjects whose triggers are all of one type (and at least one)."""
    found = [
        s
        for s in of_kind(docs, "ScaledObject")
        if {t["type"] for t in s["spec"]["triggers"]} == {trigger}
    ]
    assert found, trigger
    return found


def _kafka_trigger(docs: list[Doc], name: str) -> tuple[set[str], set[str]]:
    """(topics, consumer groups) of a Kafka-scaled process."""
    triggers = [t["metadata"] for t in named(docs, "ScaledObject", name)["spec"]["triggers"]]
    return {t["topic"] for t in triggers}, {t["consumerGroup"] for t in triggers}


def test_catalog_worker_scales_each_topic_on_the_group_that_consumes_it(docs: list[Doc]) -> None:
    from ssg.catalog.events.proposals import PROPOSAL_TOPICS
    from ssg.catalog.settings import CatalogSettings
    from ssg.catalog.worker import TOPICS
    from ssg.platform.events.organizations import ORGANIZATION_TOPIC

    fields = CatalogSettings.model_fields
    expected = {ORGANIZATION_TOPIC: fields["organizations_group"].default} | dict.fromkeys(
        PROPOSAL_TOPICS, fields["proposals_group"].default
    )
    triggers = named(docs, "ScaledObject", "catalog-worker")["spec"]["triggers"]
    group_of = {t["metadata"]["topic"]: t["metadata"]["consumerGroup"] for t in triggers}
    assert len(triggers) == len(group_of), "one trigger per topic"
    assert group_of == expected
    assert set(group_of) == set(TOPICS)


def test_registration_worker_scales_on_every_proposal_topic_it_consumes(docs: list[Doc]) -> None:
    from ssg.registration.events.proposals import PROPOSAL_TOPICS
    from ssg.registration.settings import RegistrationSettings

    topics, groups = _kafka_trigger(docs, "registration-worker")
    assert groups == {RegistrationSettings.model_fields["proposals_group"].default}
    assert topics == set(PROPOSAL_TOPICS)


def test_notifications_worker_scales_on_every_topic_its_matcher_consumes(docs: list[Doc]) -> None:
    from ssg.notifications.events.items import CONSUMED_TOPICS
    from ssg.notifications.settings import NotificationsSettings

    topics, groups = _kafka_trigger(docs, "notifications-worker")
    assert topics == set(CONSUMED_TOPICS)
    assert groups == {NotificationsSettings.model_fields["matcher_group"].default}


def test_recommendation_worker_scales_on_every_topic_it_consumes(docs: list[Doc]) -> None:
    from ssg.recommendation.settings import RecommendationSettings
    from ssg.recommendation.worker import TOPICS

    topics, groups = _kafka_trigger(docs, "recommendation-worker")
    assert topics == set(TOPICS)
    assert groups == {RecommendationSettings.model_fields["worker_group"].default}


def test_search_worker_scales_on_every_topic_its_indexer_consumes(docs: list[Doc]) -> None:
    from ssg.search.events.topics import SOURCE_TOPICS

    worker = named(docs, "Deployment", "search-worker")
    topics, groups = _kafka_trigger(docs, "search-worker")
    assert topics == set(SOURCE_TOPICS)
    # faust's consumer group is its app id: the one the pods are given.
    assert groups == {config_values(docs, worker)["SSG_INDEXER_APP_ID"]}


def test_search_processes_find_the_opensearch_cluster_by_its_service(docs: list[Doc]) -> None:
    cluster = named(docs, "OpenSearchCluster", "ssg-opensearch")["spec"]["general"]
    for name in ("search-api", "search-worker"):
        url = config_values(docs, named(docs, "Deployment", name))["SSG_OPENSEARCH_URL"]
        assert url == f"https://{cluster['serviceName']}:9200", name


def test_delivery_scales_on_the_task_queue_the_dispatcher_fills(docs: list[Doc]) -> None:
    from ssg.notifications.queues import Topology

    delivery = named(docs, "Deployment", "notifications-delivery")
    prefix = config_values(docs, delivery)["SSG_QUEUE_PREFIX"]
    triggers = named(docs, "ScaledObject", "notifications-delivery")["spec"]["triggers"]
    assert [t["metadata"]["queueName"] for t in triggers] == [Topology(prefix, ()).tasks]


def test_the_ingress_bridge_scales_on_every_queue_it_consumes(docs: list[Doc]) -> None:
    from ssg.ingress.amqp.topology import consumed_queues
    from ssg.ingress.domain.catalogue import CATALOGUE

    triggers = named(docs, "ScaledObject", "ingress-bridge")["spec"]["triggers"]
    queues = [t["metadata"]["queueName"] for t in triggers]
    assert sorted(queues) == sorted(q.name for q in consumed_queues())
    # The topics it writes exist with the partition count it would create them with.
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic")
    }
    wanted = int(
        config_values(docs, named(docs, "Deployment", "ingress-bridge"))["SSG_TOPIC_PARTITIONS"]
    )
    assert {partitions[t.topic] for t in CATALOGUE.values()} == {wanted}


# --- network ---------------------------------------------------------------------------------


def test_network_is_denied_by_default(docs: list[Doc]) -> None:
    deny = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert len(deny) == 1
    for deployment in deployments(docs):
        assert selects(deny[0]["spec"]["podSelector"], pod_labels(deployment))


def test_only_the_design_flows_are_open(docs: list[Doc]) -> None:
    """Each platform pod may reach DNS and exactly what PROCESSES lists for it (its own MongoDB,
    the Kafka brokers, RabbitMQ, public addresses); it accepts scrapes on its metrics port, and
    gRPC calls when it is an API. Nothing else."""
    policies = of_kind(docs, "NetworkPolicy")
    mongodb = {m["metadata"]["name"] for m in of_kind(docs, "MongoDBCommunity")}
    kafka = named(docs, "Kafka", "ssg-kafka")["metadata"]["name"]
    rabbitmq = named(docs, "RabbitmqCluster", "ssg-rabbitmq")["metadata"]["name"]
    opensearch = named(docs, "OpenSearchCluster", "ssg-opensearch")["metadata"]["name"]
    for deployment in deployments(docs):
        name = deployment["metadata"]["name"]
        labels = pod_labels(deployment)
        service = labels["app.kubernetes.io/name"]
        component = labels["app.kubernetes.io/component"]
        mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        egress = {
            _peer(peer, rule)
            for p in mine
            for rule in p["spec"].get("egress", [])
            for peer in rule["to"]
        }
        ingress = {
            _peer(peer, rule)
            for p in mine
            for rule in p["spec"].get("ingress", [])
            for peer in rule["from"]
        }
        peers = {
            "mongodb": ("", f"app={service}-mongodb-svc", "27017"),
            "kafka": ("", f"strimzi.io/broker-role=true,strimzi.io/cluster={kafka}", "9092"),
            # The RabbitMQ Cluster Operator labels its pods with the cluster's name.
            "rabbitmq": ("", f"app.kubernetes.io/name={rabbitmq}", "5672"),
            # The OpenSearch Operator labels its pods with the cluster's name.
            "opensearch": ("", f"opster.io/opensearch-cluster={opensearch}", "9200"),
            "internet": ("0.0.0.0/0", "", "25,443,465,587,80"),
        }
        wanted = PROCESSES[name].egress
        expected_egress = {("kube-system", "k8s-app=kube-dns", "53")}
        expected_egress |= {peers[flow] for flow in wanted}
        assert egress == expected_egress, name
        if "mongodb" in wanted:
            assert f"{service}-mongodb" in mongodb
        expected_ingress = {("monitoring", "app.kubernetes.io/name=prometheus", "metrics")}
        if component == "api":
            expected_ingress |= {
                ("ssg.io/edge=true", "", "grpc"),
                ("", "ssg.io/grpc-client=true", "grpc"),
            }
        assert ingress == expected_ingress, name


def test_traffic_out_of_the_cluster_never_reaches_private_addresses(docs: list[Doc]) -> None:
    blocks = [
        peer["ipBlock"]
        for p in of_kind(docs, "NetworkPolicy")
        for rule in p["spec"].get("egress", [])
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert blocks  # webhooks and SMTP of notifications-delivery
    for block in blocks:
        assert set(block["except"]) >= PRIVATE_RANGES, block


def _peer(peer: Doc, rule: Doc) -> tuple[str, str, str]:
    """(namespace or CIDR, pod labels, ports) of one NetworkPolicy peer, for comparison."""
    ports = ",".join(sorted({str(p["port"]) for p in rule["ports"]}))
    if "ipBlock" in peer:
        return peer["ipBlock"]["cidr"], "", ports
    ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
    namespace = ns.get("kubernetes.io/metadata.name") or ",".join(f"{k}={v}" for k, v in ns.items())
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    assert peer.get("podSelector") != {} and peer.get("namespaceSelector") != {}, (
        "a peer allows all"
    )
    return namespace, ",".join(f"{k}={v}" for k, v in sorted(pods.items())), ports


def test_kafka_accepts_only_platform_pods_and_keda_on_the_plain_listener(docs: list[Doc]) -> None:
    listeners = named(docs, "Kafka", "ssg-kafka")["spec"]["kafka"]["listeners"]
    plain = next(listener for listener in listeners if listener["port"] == 9092)
    assert plain["networkPolicyPeers"]
    tls = next(listener for listener in listeners if listener["port"] == 9093)
    assert tls["tls"] is True and tls["authentication"]["type"] == "scram-sha-512"


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_referenced_never_included(docs: list[Doc]) -> None:
    assert of_kind(docs, "Secret") == []
    for deployment in deployments(docs):
        env = container(deployment).get("env", [])
        for var in env:
            if SECRET_WORDS.search(var["name"]):
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref["name"] and ref["key"], var
                assert "value" not in var
        names = {var["name"] for var in env}
        wanted = PROCESSES[deployment["metadata"]["name"]].egress
        assert ("SSG_MONGODB_URI" in names) == ("mongodb" in wanted)
        assert ("SSG_AMQP_URL" in names) == ("rabbitmq" in wanted)
        for key in config_values(docs, deployment):
            assert not SECRET_WORDS.search(key), key


def test_each_service_reads_the_secret_its_mongodb_operator_writes(docs: list[Doc]) -> None:
    written = {
        user["connectionStringSecretName"]
        for m in of_kind(docs, "MongoDBCommunity")
        for user in m["spec"]["users"]
    }
    readers = set()
    for deployment in deployments(docs):
        env = {var["name"]: var for var in container(deployment).get("env", [])}
        if "SSG_MONGODB_URI" not in env:
            continue
        ref = env["SSG_MONGODB_URI"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] in written
        service = pod_labels(deployment)["app.kubernetes.io/name"]
        mongo = named(docs, "MongoDBCommunity", f"{service}-mongodb")
        assert mongo["spec"]["members"] == 3 and mongo["spec"]["type"] == "ReplicaSet"
        user = mongo["spec"]["users"][0]
        assert user["db"] == service and user["connectionStringSecretName"] == ref["name"]
        readers.add(mongo["metadata"]["name"])
    # Every replica set belongs to a service that reads it.
    assert readers == {m["metadata"]["name"] for m in of_kind(docs, "MongoDBCommunity")}


def test_each_amqp_process_connects_as_its_services_rabbitmq_user(docs: list[Doc]) -> None:
    users = {u["spec"]["importCredentialsSecret"]["name"]: u for u in of_kind(docs, "User")}
    for deployment in deployments(docs):
        env = {var["name"]: var for var in container(deployment).get("env", [])}
        if "SSG_AMQP_URL" not in env:
            continue
        secret = env["SSG_AMQP_URL"]["valueFrom"]["secretKeyRef"]["name"]
        user = users[secret]
        assert user["metadata"]["name"] == pod_labels(deployment)["app.kubernetes.io/name"]
        assert user["spec"]["rabbitmqClusterReference"]["name"] == "ssg-rabbitmq"


def _permissions(docs: list[Doc], user: str) -> dict[str, re.Pattern[str]]:
    (permission,) = [
        p for p in of_kind(docs, "Permission") if p["spec"]["userReference"]["name"] == user
    ]
    return {k: re.compile(v) for k, v in permission["spec"]["permissions"].items()}


def test_rabbitmq_permissions_cover_the_names_the_code_uses_and_no_others(
    docs: list[Doc],
) -> None:
    from ssg.ingress.amqp import topology as ingress
    from ssg.notifications.domain.retry import Backoff
    from ssg.notifications.queues import Topology
    from ssg.notifications.settings import NotificationsSettings

    prefix = config_values(docs, named(docs, "Deployment", "notifications-delivery"))[
        "SSG_QUEUE_PREFIX"
    ]
    defaults = NotificationsSettings.model_fields
    backoff = Backoff(
        *(
            defaults[f].default
            for f in ("retry_attempts", "retry_base_ms", "retry_multiplier", "retry_max_ms")
        )
    )
    queues = [q.name for q in Topology(prefix, tuple(backoff.delays_ms())).queues()]
    allowed = _permissions(docs, "notifications")
    for name in queues:
        assert all(allowed[op].fullmatch(name) for op in ("configure", "write", "read")), name
    assert allowed["write"].fullmatch("amq.default")  # publishes through the default exchange
    assert not allowed["configure"].fullmatch("ssg.ingress")

    allowed = _permissions(docs, "ingress")
    names = [q.name for q in ingress.consumed_queues()] + [ingress.DEAD_LETTER, ingress.UNROUTED]
    names += [ingress.exchange.name, ingress.dead_letter_queue.name]
    for name in names:
        assert all(allowed[op].fullmatch(name) for op in ("configure", "write", "read")), name
    assert not allowed["read"].fullmatch(queues[0])


# --- infrastructure --------------------------------------------------------------------------


def test_every_topic_and_its_dead_letter_topic_exist(docs: list[Doc]) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    expected = topics_file()
    assert set(topics) == set(expected) | {f"{name}.dlq" for name in expected}
    for name, topic in topics.items():
        spec = topic["spec"]
        assert spec["replicas"] == 3
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "ssg-kafka"
        policy = spec["config"]["cleanup.policy"]
        assert policy == ("compact" if name in ENTITY_TOPICS else "delete"), name
        if policy == "delete":
            assert int(spec["config"]["retention.ms"]) >= 7 * 86_400_000


def test_the_operators_resources_carry_what_the_platform_needs(docs: list[Doc]) -> None:
    kafka = named(docs, "Kafka", "ssg-kafka")
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    pool = of_kind(docs, "KafkaNodePool")[0]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "ssg-kafka"
    assert pool["spec"]["replicas"] == 3
    assert (
        named(docs, "OpenSearchCluster", "ssg-opensearch")["spec"]["nodePools"][0]["replicas"] == 3
    )
    assert named(docs, "RabbitmqCluster", "ssg-rabbitmq")["spec"]["replicas"] == 3
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            assert "/" in doc["apiVersion"] and doc["metadata"]["name"] and doc["spec"]


def test_only_the_global_instance_mirrors_the_regional_public_topics(
    docs: list[Doc], overlay: str
) -> None:
    mirrors = of_kind(docs, "KafkaMirrorMaker2")
    if overlay != "global":
        assert mirrors == []
        return
    (mm2,) = mirrors
    aliases = {c["alias"] for c in mm2["spec"]["clusters"]}
    assert aliases == set(INSTANCES)
    all_topics = topics_file()
    for mirror in mm2["spec"]["mirrors"]:
        assert mirror["targetCluster"] == "global" == mm2["spec"]["connectCluster"]
        pattern = re.compile(mirror["topicsPattern"])
        mirrored = {
            t for t in all_topics + [f"{t}.dlq" for t in all_topics] if pattern.fullmatch(t)
        }
        assert mirrored == ENTITY_TOPICS
    for cluster in mm2["spec"]["clusters"]:
        assert cluster["authentication"]["passwordSecret"]["secretName"]


def test_regional_instances_run_fewer_api_replicas_than_the_global(
    rendered: dict[str, list[Doc]],
) -> None:
    def replicas(overlay: str) -> int:
        return int(named(rendered[overlay], "Deployment", "catalog-api")["spec"]["replicas"])

    assert replicas("global") > replicas("asia-pacific") == replicas("arab-states-europe-cis")


# --- monitoring objects in the overlays -------------------------------------------------------


def test_the_pod_monitor_scrapes_every_process(docs: list[Doc]) -> None:
    (monitor,) = of_kind(docs, "PodMonitor")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    for deployment in deployments(docs):
        assert selects(monitor["spec"]["selector"], pod_labels(deployment))
        assert endpoint["port"] in _ports(deployment)
        assert (
            str(_ports(deployment)[endpoint["port"]])
            == config_values(docs, deployment)["SSG_METRICS_PORT"]
        )


def test_pods_get_the_service_and_process_labels_of_the_local_scrape(docs: list[Doc]) -> None:
    """Rules and dashboards group by service and process: the PodMonitor takes them from the
    pod labels, deploy/local/prometheus.yml names them by hand; both must agree."""
    local = yaml.safe_load((ROOT / "deploy/local/prometheus.yml").read_text())
    (job,) = [j for j in local["scrape_configs"] if j["job_name"] == "ssg-services"]
    wanted = {
        (target["labels"]["service"], target["labels"]["process"])
        for target in job["static_configs"]
        if target["labels"]["service"] != "diagnostics"  # a local tool, not deployed
    }
    deployed = {
        (pod_labels(d)["app.kubernetes.io/name"], pod_labels(d)["app.kubernetes.io/component"])
        for d in deployments(docs)
    }
    assert deployed == wanted


def test_dashboards_are_provisioned_by_configmap(docs: list[Doc]) -> None:
    dashboards = named(docs, "ConfigMap", "ssg-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = {p.name for p in (ROOT / "deploy/monitoring/dashboards").glob("*.json")}
    assert set(dashboards["data"]) == shipped
    assert of_kind(docs, "PrometheusRule")[0]["spec"]["groups"]


# --- skaffold --------------------------------------------------------------------------------


def test_skaffold_builds_every_image_and_deploys_every_overlay(
    rendered: dict[str, list[Doc]],
) -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    images = {
        container(d)["image"] for docs in rendered.values() for d in of_kind(docs, "Deployment")
    }
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert set(artifacts) == images
    for image, artifact in artifacts.items():
        assert artifact["docker"]["buildArgs"]["SERVICE"] == image.removeprefix("ssg-")
        assert (ROOT / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(OVERLAYS) == set(profiles)
    for name in OVERLAYS:
        paths = _kustomize_paths(profiles[name])
        assert paths == [f"k8s/overlays/{name}"]
    assert all((ROOT / p / "kustomization.yaml").is_file() for p in _kustomize_paths(skaffold))


def _kustomize_paths(section: Doc) -> list[str]:
    paths: list[str] = section["manifests"]["kustomize"]["paths"]
    return paths


# --- per-instance settings: public address, mail relay, ingress producers ---------------------


def test_no_overlay_ships_a_placeholder_value(rendered: dict[str, list[Doc]]) -> None:
    for overlay, objects in rendered.items():
        text = yaml.safe_dump_all(objects).lower()
        for word in ("example.org", "example.com", "todo", "changeme", "placeholder"):
            assert word not in text, f"{overlay}: {word}"


def test_each_instance_links_its_notifications_to_its_own_address(
    rendered: dict[str, list[Doc]],
) -> None:
    addresses = {}
    for overlay, objects in rendered.items():
        delivery = named(objects, "Deployment", "notifications-worker")
        address = config_values(objects, delivery)["SSG_PUBLIC_BASE_URL"]
        assert address.startswith("https://") and overlay in address
        addresses[overlay] = address
    assert len(set(addresses.values())) == len(addresses)


def test_the_mail_relay_is_the_instances_secret_not_a_config_value(docs: list[Doc]) -> None:
    delivery = named(docs, "Deployment", "notifications-delivery")
    env = {e["name"]: e for e in container(delivery).get("env", [])}
    for name, key in (
        ("SSG_SMTP_HOST", "host"),
        ("SSG_SMTP_USERNAME", "username"),
        ("SSG_SMTP_PASSWORD", "password"),
    ):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("notifications-smtp", key)
    for config in of_kind(docs, "ConfigMap"):
        assert "SSG_SMTP_HOST" not in config.get("data", {})


def test_every_ingress_producer_is_a_write_only_rabbitmq_user_of_its_own(docs: list[Doc]) -> None:
    bridge = named(docs, "Deployment", "ingress-bridge")
    producers = json.loads(config_values(docs, bridge)["SSG_PRODUCERS"])
    assert producers, "an instance without publishers dead-letters every message"
    for user, types in producers.items():
        assert types and set(types) <= set(CATALOGUE), user
        name = f"ingress-producer-{user}"
        rabbit_user = named(docs, "User", name)
        assert rabbit_user["spec"]["importCredentialsSecret"]["name"] == name
        permission = named(docs, "Permission", name)["spec"]
        assert permission["userReference"]["name"] == name
        assert permission["permissions"] == {
            "configure": "",
            "write": r"^ssg\.ingress$",
            "read": "",
        }
    mine = {d["metadata"]["name"] for d in of_kind(docs, "User")} - {"notifications", "ingress"}
    assert mine == {f"ingress-producer-{user}" for user in producers}


def test_delivery_queues_are_quorum_queues_on_the_replicated_broker(docs: list[Doc]) -> None:
    """Classic queues live on one node; the three-node cluster replicates only quorum queues,
    and the notifications topology then dead-letters its TTL delay queues at least once."""
    (cluster,) = of_kind(docs, "RabbitmqCluster")
    assert cluster["spec"]["replicas"] >= 3
    assert "default_queue_type = quorum" in cluster["spec"]["rabbitmq"]["additionalConfig"]
    for process in ("notifications-worker", "notifications-delivery"):
        values = config_values(docs, named(docs, "Deployment", process))
        assert values["SSG_QUEUE_TYPE"] == "quorum", process


# --- search on the secured OpenSearch cluster ----------------------------------------------


def test_search_logs_in_to_opensearch_and_trusts_only_the_clusters_ca(docs: list[Doc]) -> None:
    cluster = named(docs, "OpenSearchCluster", "ssg-opensearch")
    assert cluster["spec"]["security"]["tls"]["http"]["generate"] is True
    # The operator writes the HTTP certificate (with its CA as ca.crt) to <cluster>-http-cert.
    cert_secret = cluster["metadata"]["name"] + "-http-cert"
    searches = [d for d in deployments(docs) if pod_labels(d)["app.kubernetes.io/name"] == "search"]
    assert {d["metadata"]["name"] for d in searches} == {"search-api", "search-worker"}
    for deployment in searches:
        app = container(deployment)
        env = {var["name"]: var for var in app["env"]}
        for name, key in (
            ("SSG_OPENSEARCH_USERNAME", "username"),
            ("SSG_OPENSEARCH_PASSWORD", "password"),
        ):
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "search-opensearch",
                "key": key,
            }
        settings = config_values(docs, deployment)
        assert settings["SSG_OPENSEARCH_URL"].startswith("https://")
        ca_file = settings["SSG_OPENSEARCH_CA_FILE"]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        [mount] = [m for m in app["volumeMounts"] if ca_file.startswith(m["mountPath"] + "/")]
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == cert_secret
        # Only the CA: the server's private key in the same Secret stays out of the pod.
        assert secret["items"] == [{"key": "ca.crt", "path": ca_file.rsplit("/", 1)[1]}]
        assert mount["readOnly"] is True
