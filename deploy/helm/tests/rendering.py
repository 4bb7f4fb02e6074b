"""Lint and render the meshflow chart offline with the Helm v4 SDK.

helm-python-sdk binds Helm's own Go SDK (libhelm_c) through ctypes, so
`helm lint` and `helm template` run here without a helm binary or a cluster.
Every scenario in values/ is rendered with the release name and namespace a
real install uses; the tests, the schema validations and checkov all read
what this module renders.

The chart reads alerts/ and dashboards/ through the symlinks
files/alerts and files/dashboards. MESHFLOW_K8S_FIXTURES=alerts,dashboards
points either of them at deploy/helm/tests/fixtures/ instead; it exists for
working on the chart before those directories have content and is never
set by scripts/test-k8s.sh.

Run as a script it lints every scenario and writes the rendered manifests to
OUTDIR/<scenario>/{core,crds}.yaml:

    python deploy/helm/tests/rendering.py OUTDIR
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

TESTS_DIR = Path(__file__).resolve().parent
CHART_DIR = TESTS_DIR.parent / "meshflow"
REPO_ROOT = TESTS_DIR.parents[2]
VALUES_DIR = TESTS_DIR / "values"
FIXTURES_DIR = TESTS_DIR / "fixtures"

RELEASE = "meshflow"
NAMESPACE = "meshflow"
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.30.0", "1.37.0")

# API groups whose kinds come from CRDs (validated by validate_crds.py, not
# by kubernetes-validate).
CRD_GROUPS = ("security.istio.io", "networking.istio.io", "monitoring.coreos.com")


def fixture_dirs() -> set[str]:
    """Which of alerts/dashboards are taken from tests/fixtures/ (see module doc)."""
    raw = os.environ.get("MESHFLOW_K8S_FIXTURES", "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = names - {"alerts", "dashboards"}
    if unknown:
        raise SystemExit(f"MESHFLOW_K8S_FIXTURES: unknown entries {sorted(unknown)}")
    return names


def source_dir(kind: str) -> Path:
    """The directory the chart's files/<kind> link resolves to for this run."""
    if kind in fixture_dirs():
        return FIXTURES_DIR / kind
    return REPO_ROOT / kind


@functools.cache
def chart_path() -> Path:
    """The chart to load: the real one, or a copy whose links point at fixtures."""
    fixtures = fixture_dirs()
    if not fixtures:
        return CHART_DIR
    copy = Path(tempfile.mkdtemp(prefix="meshflow-chart-")) / CHART_DIR.name
    shutil.copytree(CHART_DIR, copy, symlinks=True)
    for kind in ("alerts", "dashboards"):
        link = copy / "files" / kind
        link.unlink()
        link.symlink_to(source_dir(kind), target_is_directory=True)
    return copy


def scenarios() -> list[str]:
    """Scenario names: values/<name>.yaml."""
    return sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))


def scenarios_with_kafka() -> list[str]:
    """Scenarios that install the chart's own Kafka (kafka.enabled, true by default)."""
    return [s for s in scenarios() if scenario_values(s).get("kafka", {}).get("enabled", True)]


def scenario_values(name: str) -> dict:
    return yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {}


def _helm():
    # Imported late so that the pure helpers above work without the SDK.
    import helm_python

    return helm_python


def lint(name: str) -> list[dict]:
    """helm lint --strict findings of warning level or worse, for each kube version."""
    helm = _helm()
    problems = []
    for kube in KUBE_VERSIONS:
        report = helm.lint(
            str(chart_path()),
            scenario_values(name),
            strict=True,
            namespace=NAMESPACE,
            kube_version=f"v{kube}",
        )
        problems += [dict(m, kube=kube) for m in report["messages"] if m["severity"] >= 2]
        problems += [{"severity": 3, "path": "", "error": e, "kube": kube} for e in report["errors"]]
    return problems


@functools.cache
def render_text(name: str) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would print it."""
    helm = _helm()
    with helm.Chart.load(str(chart_path())) as chart:
        values = scenario_values(name)
        chart.validate_schema(values)
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@functools.cache
def render(name: str) -> tuple[dict, ...]:
    """Every rendered Kubernetes object of a scenario (NOTES.txt left out)."""
    docs = []
    for path, text in sorted(render_text(name).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return tuple(docs)


def is_crd_kind(doc: dict) -> bool:
    return doc["apiVersion"].split("/")[0] in CRD_GROUPS


def write_scenario(name: str, outdir: Path) -> Path:
    """Write core.yaml and crds.yaml for one scenario; returns its directory."""
    target = outdir / name
    target.mkdir(parents=True, exist_ok=True)
    core = [d for d in render(name) if not is_crd_kind(d)]
    crds = [d for d in render(name) if is_crd_kind(d)]
    for filename, docs in (("core.yaml", core), ("crds.yaml", crds)):
        (target / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = Path(argv[1])
    failed = False
    print(f"helm SDK {_helm().helm_sdk_version()}, chart {chart_path()}")
    for name in scenarios():
        problems = lint(name)
        for p in problems:
            print(f"lint [{name}, kube {p['kube']}] {p['path']}: {p['error']}")
        failed |= bool(problems)
        target = write_scenario(name, outdir)
        print(f"rendered {name}: {len(render(name))} objects -> {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
