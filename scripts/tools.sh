#!/usr/bin/env bash
# Installs the pinned tools rolehop's tests and demo need into $ROLEHOP_TOOLS_DIR
# (default: .tools in the checkout, gitignored), each from a committed lock file:
# - a Python venv from scripts/tools/requirements.lock (moto[server], the aws CLI, boto3,
#   cfn-lint and everything they pull in, every version pinned);
# - with --node, scripts/tools/package-lock.json: Node 22, gitlab-ci-local and the independent
#   IAM engine @cloud-copilot/iam-simulate (AGPL-3.0: a separate test-time program that the
#   tests call, never vendored or linked); and skopeo, umoci, runc from Debian's packages for
#   the release pipeline's image test.
# Idempotent and quiet when everything is already there; safe to run from a fresh machine.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd -P)
locks=$root/scripts/tools

# A lock file's content is part of its stamp, so changing a pin rebuilds the install and CI
# caches never go stale. The venv's path is part of it too: a venv is not relocatable (pip
# writes its absolute path into every entry point's #! line), so a moved or copied tools dir
# is rebuilt.
py_stamp="$(sha256sum < "$locks/requirements.lock" | cut -c1-64) @ $tools/venv"

# True when every entry point the tests run starts with an interpreter that exists and the
# pinned packages import: catches a half-finished install and a moved or copied cache.
venv_usable() {
  local bin interp
  [[ "$(cat "$tools/venv/.rolehop-stamp" 2>/dev/null)" == "$py_stamp" ]] || return 1
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
  # --no-deps: the lock lists the whole closure, so nothing unpinned can slip in.
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r "$locks/requirements.lock"
  echo "$py_stamp" > "$tools/venv/.rolehop-stamp"
fi

if [[ "${1:-}" == "--node" ]]; then
  node_stamp="$(cat "$locks/package.json" "$locks/package-lock.json" | sha256sum | cut -c1-64)"
  node_usable() {
    [[ "$(cat "$tools/node/.rolehop-stamp" 2>/dev/null)" == "$node_stamp" ]] || return 1
    PATH="$tools/node/node_modules/.bin:$PATH" gitlab-ci-local --version >/dev/null 2>&1 || return 1
    [[ -f "$tools/node/node_modules/@cloud-copilot/iam-simulate/package.json" ]]
  }
  if ! node_usable; then
    echo "tools: installing Node tools from scripts/tools/package-lock.json into $tools/node" >&2
    command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync >/dev/null; }
    rm -rf "$tools/node" && mkdir -p "$tools/node"
    cp "$locks/package.json" "$locks/package-lock.json" "$tools/node/"
    (cd "$tools/node" && npm ci --silent --no-audit --no-fund)
    echo "$node_stamp" > "$tools/node/.rolehop-stamp"
  fi
  # The release pipeline test builds and runs the OCI image with Debian's OCI tools.
  missing=()
  for tool in skopeo umoci runc strip; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if (( ${#missing[@]} )); then
    echo "tools: installing ${missing[*]} from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo umoci runc binutils >/dev/null
  fi
fi
