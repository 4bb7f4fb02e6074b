#!/usr/bin/env bash
# Builds the local broker: Tansu 0.6.0 from its crates.io sources with the
# patches in this directory applied, and installs it as `tansu` in
# ~/.cargo/bin. Skips the build when the installed binary already reports
# this patch set.
#
#   deploy/local/tansu/build.sh            # build and install when needed
#   deploy/local/tansu/build.sh --stock    # build unpatched 0.6.0 into
#                                          # $MESHFLOW_TANSU_STOCK_DIR (for the
#                                          # regression tests' negative runs)
#   deploy/local/tansu/build.sh --version  # print the version it installs
#
# How: the pinned .crate files (checked against the SHA-256 sums below, as
# in Tansu's own Cargo.lock) are unpacked side by side; each patch applies
# with `patch -p1` to that tree; the `tansu` crate is built with
# `[patch.crates-io]` pointing at the patched crates, keeping the versions
# of every other dependency from the Cargo.lock that `tansu` ships. The
# version of tansu-cli becomes 0.6.0+meshflow.<digest of the patches and
# the build settings>, so
# `tansu --version` tells a patched build (and which patch set) from a stock
# one. The build directory and its target directory are kept under
# ~/.cache/meshflow so a changed patch rebuilds only the crates it touches.
#
# The patches are Apache-2.0, Tansu's own licence (LICENSE in each crate).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

TANSU_VERSION="0.6.0"
# name sha256 (from Tansu 0.6.0's Cargo.lock and crates.io)
CRATES=(
  "tansu 4fdd85473ec265140488cf8d55e82b844f5c051c8916fabdd4a71156ac053f6d"
  "tansu-broker 93c1e91b40c2a706dfdbe9a795c08c70918c874ad23f6e0e87564cc0a180e720"
  "tansu-storage 720d2ed8e6010c70f7f06e5af5a7274ebbf6e42fdcd9e46de542b10dc4d2f35d"
  "tansu-cli 600469bbf4252bf48b922abc2b582e3778533cd52ae59e7b6f51d307b4523965"
)
FEATURES="dynostore,libsql"
# How it is compiled. Tansu's 410 dependencies at opt-level 3 took 25
# minutes on 2 cores; at opt-level 1 the build is much shorter and the
# broker keeps the tests' rates (they stay at or under 1,000 msg/s, where
# the broker's time goes to SQLite). SQLite's C code (libsql-ffi) and
# Tansu's own crates stay at opt-level 3. Part of the version digest, so a
# change rebuilds.
PROFILE=(
  --config 'profile.release.package."*".opt-level=1'
  --config 'profile.release.package.libsql-ffi.opt-level=3'
  --config 'profile.release.package.tansu-broker.opt-level=3'
  --config 'profile.release.package.tansu-storage.opt-level=3'
  --config 'profile.release.package.tansu-sans-io.opt-level=3'
)

cache="${MESHFLOW_CACHE:-$HOME/.cache/meshflow}"
downloads="$cache/crates"
target="${MESHFLOW_TANSU_TARGET:-$cache/tansu-target}"

die() { echo "tansu build: $*" >&2; exit 1; }

patches=("$here"/[0-9][0-9][0-9][0-9]-*.patch)
[ -e "${patches[0]}" ] || die "no patches in $here"
digest="$( (cat "${patches[@]}"; echo "$FEATURES ${PROFILE[*]}") | sha256sum | cut -c1-12)"
patched_version="$TANSU_VERSION+meshflow.$digest"

# Downloads one pinned .crate into $downloads, from crates.io's download
# host, or takes it from cargo's own cache when that already holds it.
fetch_crate() {
  local name="$1" sum="$2" file="$downloads/$1-$TANSU_VERSION.crate" cached
  mkdir -p "$downloads"
  if ! echo "$sum  $file" | sha256sum --check --status 2>/dev/null; then
    cached="$(ls "$HOME"/.cargo/registry/cache/*/"$name-$TANSU_VERSION.crate" 2>/dev/null | head -n1 || true)"
    if [ -n "$cached" ]; then
      cp "$cached" "$file"
    else
      curl --silent --show-error --fail --location --retry 3 -o "$file.part" \
        "https://static.crates.io/crates/$name/$name-$TANSU_VERSION.crate"
      mv "$file.part" "$file"
    fi
    echo "$sum  $file" | sha256sum --check --status || die "$name-$TANSU_VERSION.crate: checksum mismatch"
  fi
}

# Unpacks the pinned crates into $1 (fresh), applies the patches unless
# --stock, and points the tansu crate at the unpacked ones.
prepare() {
  local tree="$1" mode="$2" entry name sum
  rm -rf "$tree"
  mkdir -p "$tree"
  for entry in "${CRATES[@]}"; do
    read -r name sum <<<"$entry"
    fetch_crate "$name" "$sum"
    tar -xzf "$downloads/$name-$TANSU_VERSION.crate" -C "$tree"
  done
  if [ "$mode" = patched ]; then
    for p in "${patches[@]}"; do
      patch --quiet --forward --strip=1 --directory="$tree" <"$p" ||
        die "$(basename "$p") does not apply to Tansu $TANSU_VERSION"
    done
    sed -i "0,/^version = \"$TANSU_VERSION\"/s//version = \"$patched_version\"/" \
      "$tree/tansu-cli-$TANSU_VERSION/Cargo.toml"
  fi
  {
    echo
    echo "[patch.crates-io]"
    for entry in "${CRATES[@]:1}"; do
      read -r name _ <<<"$entry"
      echo "$name = { path = \"../$name-$TANSU_VERSION\" }"
    done
  } >>"$tree/tansu-$TANSU_VERSION/Cargo.toml"
  if [ "$mode" = patched ]; then
    # The lock file names the registry's tansu-cli 0.6.0; let the patched
    # one (its version now carries the patch set) take its place, and
    # nothing else move.
    (cd "$tree/tansu-$TANSU_VERSION" &&
      cargo update --quiet -p "registry+https://github.com/rust-lang/crates.io-index#tansu-cli@$TANSU_VERSION")
  fi
}

build() {
  local tree="$1"
  (cd "$tree/tansu-$TANSU_VERSION" &&
    CARGO_TARGET_DIR="$target" cargo build "${PROFILE[@]}" --release --quiet --features "$FEATURES" --bin tansu)
}

case "${1:-}" in
  --version)
    echo "$patched_version"
    exit 0
    ;;
  --stock)
    out="${MESHFLOW_TANSU_STOCK_DIR:-$cache/tansu-stock}"
    tree="$cache/tansu-build/stock"
    prepare "$tree" stock
    build "$tree"
    mkdir -p "$out"
    install -m 0755 "$target/release/tansu" "$out/tansu"
    echo "tansu build: stock $TANSU_VERSION in $out/tansu"
    exit 0
    ;;
  "") ;;
  *) die "unknown argument: $1" ;;
esac

have="$(tansu --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" = "$patched_version" ]; then
  exit 0
fi

echo "tansu build: building Tansu $patched_version (${#patches[@]} patches; about 12 minutes on 2 cores the first time)"
tree="$cache/tansu-build/patched"
prepare "$tree" patched
build "$tree"
mkdir -p "$HOME/.cargo/bin"
install -m 0755 "$target/release/tansu" "$HOME/.cargo/bin/tansu"
echo "tansu build: installed $("$HOME/.cargo/bin/tansu" --version)"
