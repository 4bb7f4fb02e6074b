#!/usr/bin/env bash
# Installs what meshflow needs on a Debian 12 machine and skips what is there:
# Debian packages (build tools for librdkafka, supervisor, Prometheus, the
# sqlite3 shell that adds indexes to the broker's file, HAProxy and iproute2
# for the broker's mTLS door and network namespace), the Tansu broker
# (pinned, with meshflow's patches: deploy/local/tansu/), cargo-nextest and
# cargo-fuzz. Safe to run again; quiet when
# nothing is missing.
#
#   deploy/local/setup.sh            # everything
#   MESHFLOW_SKIP_TANSU=1 ...        # everything but Tansu
set -euo pipefail

APT_PACKAGES=(build-essential cmake pkg-config libssl-dev zlib1g-dev curl supervisor prometheus sqlite3 haproxy iproute2 openssl)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's prometheus and haproxy packages start system instances where an
  # init system runs; meshflow starts its own.
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  as_root systemctl disable --now haproxy >/dev/null 2>&1 || true
fi

export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "setup: cargo is required (rustup.rs)" >&2; exit 1; }

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# cargo-fuzz builds on stable; the fuzz targets themselves need the nightly
# toolchain (scripts/fuzz).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "setup: installing the nightly toolchain (scripts/fuzz builds the fuzz targets with it)"
  rustup toolchain install nightly --profile minimal ||
    echo "setup: no nightly toolchain could be installed; scripts/fuzz will fail" >&2
fi

# The local broker: Tansu 0.6.0 from crates.io with the fixes carried in
# deploy/local/tansu/ (a no-op when the installed one reports them).
if [ -z "${MESHFLOW_SKIP_TANSU:-}" ]; then
  "$(dirname "${BASH_SOURCE[0]}")/tansu/build.sh"
fi
