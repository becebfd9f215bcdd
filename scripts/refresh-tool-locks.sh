#!/usr/bin/env bash
# Re-resolves the test tools' lock files (scripts/tools/) from their top-level pins: edit the
# pins below or in scripts/tools/package.json, run this, review the diff, commit. Needs the
# package registries; the tests themselves never do.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
locks=$root/scripts/tools
PY_PINS=("moto[server]==5.2.5" "awscli==1.46.2" "boto3" "cfn-lint==1.58.0" "cloudsplaining==0.9.1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"
{
  echo "# The Python test tools, every package pinned (scripts/tools.sh installs exactly this)."
  echo "# Refresh: scripts/refresh-tool-locks.sh (changes the pins on purpose, then review the diff)."
  "$work/venv/bin/pip" freeze --disable-pip-version-check
} > "$locks/requirements.lock"
cp "$locks/package.json" "$work/"
(cd "$work" && npm install --package-lock-only --silent --no-audit --no-fund)
cp "$work/package-lock.json" "$locks/package-lock.json"
echo "refreshed $locks/requirements.lock and $locks/package-lock.json"
