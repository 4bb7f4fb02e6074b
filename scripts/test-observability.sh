#!/usr/bin/env bash
# Static checks of meshflow's observability: Prometheus rules and their unit
# tests, the local Prometheus config, the Grafana dashboards against
# Grafana's schema, and every PromQL expression against promtool and
# docs/contracts.md.
#
# Works on a fresh Debian 12 with node >= 20 and npm: installs Debian's
# prometheus package only if promtool is missing, and runs `npm ci` in
# dashboards/schema-check only when its lock file changed. Safe to re-run.
#
# Prints one line per check and ends with "N passed, M failed"; exits 1 if
# any check failed.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
checks_dir="$repo/dashboards/schema-check"
cd "$repo" || exit 1

# shellcheck source-path=SCRIPTDIR source=lib/step.sh
source "$repo/scripts/lib/step.sh"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# --- prerequisites -----------------------------------------------------------

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: installing Debian's prometheus package"
  as_root apt-get update -qq || exit 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null || exit 1
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are required (node >= 20)" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "node >= 20 is required, found $(node --version)" >&2
  exit 1
fi

# npm ci only when node_modules is missing or was installed from another lock.
stamp="$checks_dir/node_modules/.installed-from-package-lock.json"
if ! cmp -s "$checks_dir/package-lock.json" "$stamp"; then
  echo "installing dashboards/schema-check dependencies (npm ci)"
  (cd "$checks_dir" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
  cp "$checks_dir/package-lock.json" "$stamp"
fi

# --- checks ------------------------------------------------------------------

shopt -s nullglob
rule_files=(alerts/*.rules.yml)
rule_tests=(alerts/tests/*.yml)
shopt -u nullglob
if [ "${#rule_files[@]}" -eq 0 ] || [ "${#rule_tests[@]}" -eq 0 ]; then
  echo "no rule files or rule tests found under alerts/" >&2
  exit 1
fi

step "promtool check rules (${#rule_files[@]} files)" promtool check rules "${rule_files[@]}"
step "promtool test rules (${#rule_tests[@]} files)" promtool test rules "${rule_tests[@]}"
step "promtool check config deploy/local/prometheus.yml" promtool check config deploy/local/prometheus.yml
step "dashboards type-check against @grafana/schema" \
  bash -c 'cd "$1" && node generate.mjs && node_modules/.bin/tsc --noEmit -p tsconfig.json' _ "$checks_dir"
step "schema check rejects broken dashboards" bash -c 'cd "$1" && node check-broken.mjs' _ "$checks_dir"
step "dashboard structure and required panels" bash -c 'cd "$1" && node --test tests/dashboards.test.mjs' _ "$checks_dir"
step "PromQL parses (promtool) and uses contract metrics" bash -c 'cd "$1" && node --test tests/expressions.test.mjs' _ "$checks_dir"
step "alert labels, annotations, runbooks and test coverage" bash -c 'cd "$1" && node --test tests/rules.test.mjs' _ "$checks_dir"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
