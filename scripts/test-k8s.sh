#!/usr/bin/env bash
# Offline checks of the Kubernetes deployment (deploy/helm/meshflow):
#
#   1. helm lint --strict and helm template of every scenario in
#      deploy/helm/tests/values/, through the Helm v4 SDK (helm-python-sdk;
#      no helm binary, no cluster);
#   2. every rendered core object against the Kubernetes OpenAPI schemas
#      (kubernetes-validate --strict, the chart's oldest and the newest
#      supported Kubernetes);
#   3. the Istio and Prometheus Operator objects against their CRD schemas,
#      unknown fields included (deploy/helm/tests/crd_schemas.py);
#   4. checkov, with the accepted findings in deploy/helm/tests/checkov-skips.yaml;
#   5. the policy tests (pytest, deploy/helm/tests/).
#
# Needs python3 >= 3.11 with venv and pip. Creates or reuses a virtualenv at
# ${MESHFLOW_VENV:-$HOME/.cache/meshflow/venv} and installs the pinned
# deploy/helm/tests/requirements.txt when it changed. Safe to re-run.
# Exits non-zero if any step fails; pytest's summary line is the last line.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tests="$repo/deploy/helm/tests"
venv="${MESHFLOW_VENV:-$HOME/.cache/meshflow/venv}"
cd "$repo" || exit 1

# shellcheck source-path=SCRIPTDIR source=lib/step.sh
source "$repo/scripts/lib/step.sh"
# An ok step shows the last line of its output (Helm's INFO lines aside).
step_summary() { echo ": $(grep -v '^[0-9/]* [0-9:]* INFO ' "$1" | tail -n 1)"; }
# The Helm SDK logs every symlink it follows; leave those out.
step_failure_output() { grep -v 'INFO found symbolic link'; }

# --- virtualenv --------------------------------------------------------------

python="$(command -v python3.11 || command -v python3 || true)"
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "python3 >= 3.11 is required" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtualenv $venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" || exit 1
fi
stamp="$venv/.meshflow-k8s-requirements.sha256"
wanted="$(sha256sum "$tests/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing deploy/helm/tests/requirements.txt into $venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$tests/requirements.txt" || exit 1
  echo "$wanted" >"$stamp"
fi
py="$venv/bin/python"

# --- checks ------------------------------------------------------------------

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT

# The chart reads the repository's rule files and dashboards through these
# links; a missing target would make the chart fail to load.
for kind in alerts dashboards; do
  if [ ! -d "deploy/helm/meshflow/files/$kind/" ]; then
    echo "FAIL - deploy/helm/meshflow/files/$kind does not resolve to $kind/"
    failed=$((failed + 1))
  fi
done

step "helm lint and render" "$py" "$tests/rendering.py" "$rendered"

if ls "$rendered"/*/core.yaml >/dev/null 2>&1; then
  validate_core() {
    local kube out rc=0
    for kube in 1.30.0 1.37.0; do
      out="$("$venv/bin/kubernetes-validate" --strict --quiet -k "$kube" "$rendered"/*/core.yaml 2>&1)" || rc=1
      # A kind without a schema is only a warning to kubernetes-validate.
      if [ -n "$out" ]; then
        echo "$out"
        rc=1
      fi
    done
    echo "$(cat "$rendered"/*/core.yaml | grep -c '^kind:') core objects valid for Kubernetes 1.30 and 1.37"
    return "$rc"
  }
  step "kubernetes-validate --strict" validate_core
  step "Istio and Prometheus Operator CRD schemas" "$py" "$tests/crd_schemas.py" "$rendered"/*/crds.yaml
  step "checkov" "$py" "$tests/run_checkov.py" "$rendered"
else
  echo "FAIL - nothing rendered: schema validation and checkov not run"
  failed=$((failed + 1))
fi

if [ "$failed" -gt 0 ]; then
  echo "$failed step(s) failed before the policy tests"
fi

(cd "$tests" && "$py" -m pytest -q)
pytest_rc=$?

if [ "$failed" -gt 0 ] || [ "$pytest_rc" -ne 0 ]; then
  exit 1
fi
