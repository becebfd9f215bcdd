#!/usr/bin/env bash
# The test command (README "Run the tests"): installs the pinned tools, then runs every test in
# the workspace (unit, integration against moto, CLI, and the end-to-end pipeline with
# gitlab-ci-local). Each moto-backed test starts a private
# moto server on a free loopback port and stops it when done; the trap below also stops any
# server left behind if the run is interrupted. Extra arguments go to `cargo test`
# (`-p CRATE` limits the run to those crates).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh --node

# Every moto server a test starts appends its pid here (rolehop_testkit::Moto). On exit only
# those are stopped, and only while the pid still runs moto_server, so a concurrent run sharing
# the tools folder keeps its servers.
export ROLEHOP_MOTO_PIDS
ROLEHOP_MOTO_PIDS=$(mktemp "${TMPDIR:-/tmp}/rolehop-moto-pids.XXXXXX")
cleanup() {
  local pid
  while read -r pid; do
    if grep -q moto_server "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  done < "$ROLEHOP_MOTO_PIDS"
  rm -f "$ROLEHOP_MOTO_PIDS"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# `cargo test --workspace -p X` still tests the whole workspace, so packages named in the
# arguments (before any `--`) replace --workspace: `scripts/test.sh -p rolehop-policy` tests
# only that crate.
scope=(--workspace)
for arg in "$@"; do
  case $arg in
    --) break ;;
    -p | -p* | --package | --package=*) scope=() ;;
  esac
done
cargo test "${scope[@]}" --locked --no-fail-fast "$@"
