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
# The venv's path is part of the stamp: a venv is not relocatable (pip writes its absolute path
# into every entry point's #! line), so a tools dir that was moved or copied is rebuilt.
tools=$(cd "$tools" && pwd -P)
stamp="${PY_PINS[*]} @ $tools/venv"

# True when every entry point the tests run starts with an interpreter that exists and the
# pinned packages import: catches a half-finished install and a moved or copied cache.
venv_usable() {
  local bin interp
  [[ "$(cat "$tools/venv/.rolehop-stamp" 2>/dev/null)" == "$stamp" ]] || return 1
  for bin in moto_server aws cfn-lint; do
    [[ -x "$tools/venv/bin/$bin" ]] || return 1
    interp=$(head -n 1 "$tools/venv/bin/$bin")
    interp=${interp#\#!}
    [[ -x "${interp%% *}" ]] || return 1
  done
  "$tools/venv/bin/python" -c 'import moto.server, boto3, cfnlint, awscli' 2>/dev/null
}

if ! venv_usable; then
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
  if [[ ! -x "$tools/node/node_modules/.bin/gitlab-ci-local" || "$(cat "$tools/node/.rolehop-stamp" 2>/dev/null)" != "$nstamp" ]] ||
    ! PATH="$tools/node/node_modules/.bin:$PATH" gitlab-ci-local --version >/dev/null 2>&1; then
    echo "tools: installing ${NODE_PINS[*]} into $tools/node" >&2
    command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync >/dev/null; }
    rm -rf "$tools/node" && mkdir -p "$tools/node"
    (cd "$tools/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "${NODE_PINS[@]}")
    echo "$nstamp" > "$tools/node/.rolehop-stamp"
  fi
fi
