#!/usr/bin/env bash
# The test command (README "Run the tests"): installs the pinned tools, then runs every test in
# the workspace (unit, integration against moto, CLI, and the end-to-end pipeline with
# gitlab-ci-local). Each moto-backed test starts a private
# moto server on a free loopback port and stops it when done; the trap below also stops any
# server left behind if the run is interrupted. Extra arguments go to `cargo test`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh --node

cleanup() {
  pkill -f "$ROLEHOP_TOOLS_DIR/venv/bin/moto_server" 2>/dev/null || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

cargo test --workspace --locked --no-fail-fast "$@"
