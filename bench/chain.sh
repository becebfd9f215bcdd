#!/usr/bin/env bash
# Benchmark: the whole process, start to credentials printed, of the two-hop chain against
# moto on loopback, side by side: rolehop (all checks, tags, SourceIdentity and logging on),
# the aws-sdk-rust floor (the same two calls and nothing else), the classic two
# `aws sts assume-role` calls, and a boto3 script. Writes bench/results/chain.{md,json}.
#   bench/chain.sh [RUNS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-40}
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked -p rolehop -p rolehop-aws --bin rolehop --example floor
venv=$ROLEHOP_TOOLS_DIR/venv/bin

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT INT TERM
until curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null; do sleep 0.1; done

export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
# A GitLab job's identity, so rolehop builds its session name, SourceIdentity and five tags.
export CI_PROJECT_PATH=acme/shop CI_PROJECT_ID=42 CI_PIPELINE_ID=1001 CI_JOB_ID=5005 \
  CI_COMMIT_REF_NAME=main CI_COMMIT_REF_PROTECTED=true CI_ENVIRONMENT_NAME=production
eval "$("$venv/python" bench/seed.py "$AWS_ENDPOINT_URL")"
export PATH=$venv:$PATH

mkdir -p bench/results
hyperfine --warmup 3 --runs "$runs" -N --style basic \
  --export-markdown bench/results/chain.md --export-json bench/results/chain.json \
  -n "rolehop assume" "$target/release/rolehop assume" \
  -n "aws-sdk-rust floor" "$target/release/examples/floor" \
  -n "boto3 script" "$venv/python bench/boto3_chain.py" \
  -n "aws CLI x2 (--query)" "bash bench/cli_chain.sh"
cat bench/results/chain.md

# Instructions, which do not depend on what else the machine is doing (ROLEHOP_BENCH_CALLGRIND=0
# skips this): one run of each Rust program under callgrind.
if [[ "${ROLEHOP_BENCH_CALLGRIND:-1}" == 1 ]] && command -v valgrind >/dev/null; then
  for prog in rolehop floor; do
    bin=$target/release/rolehop
    args=(assume)
    [[ $prog == floor ]] && bin=$target/release/examples/floor && args=()
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${args[@]}" >/dev/null 2>"$out.log"
    total=$(grep -a '^summary:' "$out" | awk '{print $2}')
    printf '%-8s %s instructions\n' "$prog" "$total" | tee -a bench/results/chain.md
    rm -f "$out" "$out.log"
  done
fi
