#!/usr/bin/env bash
# Supply-chain checks: the lock file is complete (`--locked`), and cargo-deny's licenses, bans
# and sources checks pass against deny.toml. Advisories are not checked: their database lives
# on GitHub, out of reach here (see deny.toml). cargo-deny is installed once into
# $ROLEHOP_TOOLS_DIR/cargo, so a CI cache of the tools dir keeps this to seconds.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
CARGO_DENY_VERSION=0.20.2

if [[ "$("$tools/cargo/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
  echo "supply-chain: installing cargo-deny $CARGO_DENY_VERSION into $tools/cargo (a few minutes, once)" >&2
  cargo install --quiet --locked --root "$tools/cargo" cargo-deny --version "$CARGO_DENY_VERSION"
fi

cd "$root"
# Fails when Cargo.lock would need a change, for the workspace and for the fuzz crate.
cargo metadata --locked --format-version 1 >/dev/null
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
"$tools/cargo/bin/cargo-deny" --locked check --hide-inclusion-graph licenses bans sources
