#!/usr/bin/env bash
# Installs the pinned tools rolehop's tests and demo need into $ROLEHOP_TOOLS_DIR
# (default: .tools in the checkout, gitignored): a Python venv with moto[server], the aws CLI,
# boto3 and cfn-lint, and, when asked with --node, gitlab-ci-local on Node 22.
# Idempotent and quiet when everything is already there; safe to run from a fresh machine.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
mkdir -p "$tools"

# Bumping a pin here invalidates the venv (the stamp differs) so CI caches never go stale.
PY_PINS=(
  "moto[server]==5.2.5"
  "awscli==1.46.2"
  "boto3"
  "cfn-lint==1.58.0"
)
stamp="${PY_PINS[*]}"
if [[ ! -x "$tools/venv/bin/moto_server" || "$(cat "$tools/venv/.rolehop-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "tools: installing Python tools into $tools/venv" >&2
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"
  # boto3 follows awscli's botocore pin; record what was resolved for the notes.
  "$tools/venv/bin/pip" freeze --disable-pip-version-check > "$tools/venv/requirements.lock"
  echo "$stamp" > "$tools/venv/.rolehop-stamp"
fi

if [[ "${1:-}" == "--node" ]]; then
  NODE_PINS=("node@22" "gitlab-ci-local@4.75.1")
  nstamp="${NODE_PINS[*]}"
  if [[ ! -x "$tools/node/node_modules/.bin/gitlab-ci-local" || "$(cat "$tools/node/.rolehop-stamp" 2>/dev/null)" != "$nstamp" ]]; then
    echo "tools: installing ${NODE_PINS[*]} into $tools/node" >&2
    command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync >/dev/null; }
    rm -rf "$tools/node" && mkdir -p "$tools/node"
    (cd "$tools/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "${NODE_PINS[@]}")
    echo "$nstamp" > "$tools/node/.rolehop-stamp"
  fi
fi
