#!/usr/bin/env bash
# The main job, end to end on this machine (README "Quick start"): render the example
# topology, roll it out to a local AWS (moto on loopback), run the rendered GitLab pipeline
# for real with gitlab-ci-local on a protected main and on a feature branch, then audit; then
# the claim-gate example through `rolehop gate serve`, with ID tokens from a local issuer.
# Installs what is missing into gitignored folders; stops everything it started, also when
# interrupted. The steps and their checks are in scripts/demo.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh --node
if [[ -z "${ROLEHOP_BIN:-}" ]]; then
  cargo build --locked --quiet -p rolehop
  export ROLEHOP_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/rolehop
fi
# The GitLab-like issuer of the gate part (test tooling, not part of rolehop).
if [[ -z "${ROLEHOP_TEST_ISSUER_URL:-}${ROLEHOP_TEST_ISSUER_BIN:-}" ]]; then
  cargo build --locked --quiet -p rolehop-testkit --bin rolehop-test-issuer
  export ROLEHOP_TEST_ISSUER_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/rolehop-test-issuer
fi
exec "$ROLEHOP_TOOLS_DIR/venv/bin/python" scripts/demo.py
