#!/usr/bin/env bash
# The main job, on the local AWS (moto on loopback): a GitLab job's keys enter the broker
# account, chain through the service role into the deployment role of a target account, and
# a protected environment is refused from an unprotected ref. Installs what it needs into
# gitignored folders and stops everything it started, also when interrupted.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
cargo build --locked --quiet -p rolehop
target=${CARGO_TARGET_DIR:-$root/target}
venv=$ROLEHOP_TOOLS_DIR/venv/bin
export PATH=$target/debug:$venv:$PATH

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
until curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null; do sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "local AWS (moto) on 127.0.0.1:$port; seeding the broker pattern"
eval "$("$venv/python" bench/seed.py "$AWS_ENDPOINT_URL")"
echo "broker user keys: $AWS_ACCESS_KEY_ID (secret kept in the environment, never printed)"

export CI_PROJECT_PATH=acme/shop CI_PROJECT_ID=42 CI_PIPELINE_ID=1001 CI_JOB_ID=5005 \
  CI_COMMIT_REF_NAME=main CI_COMMIT_REF_PROTECTED=true CI_ENVIRONMENT_NAME=production

say "a job on protected main: rolehop exec -- aws sts get-caller-identity"
rolehop exec --protected -- aws sts get-caller-identity --output table

say "the chain, hop by hop (rolehop assume --format json, secrets removed for display)"
rolehop assume --protected --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("credentials"); print(json.dumps(d, indent=2))'

say "a job on unprotected feature-x asks for the protected environment"
CI_COMMIT_REF_NAME=feature-x CI_COMMIT_REF_PROTECTED=false rolehop assume --protected && exit 1 || echo "(exit code $?: refused, as it must be)"

say "rolehop doctor"
rolehop doctor --protected || true
