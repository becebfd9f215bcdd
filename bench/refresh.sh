#!/usr/bin/env bash
# Benchmark: rolehop's credentials endpoint and credential-process cache, against moto on
# loopback. Writes bench/results/refresh.{md,json}:
#  1. p50 of credentials served by `rolehop exec`'s endpoint to botocore's container fetcher;
#  2. `rolehop credential-process` as a whole process: cache hit, uncached chain, next to the
#     aws CLI's own overhead for one call (`aws sts get-caller-identity`, static credentials);
#  3. a job script of 40 `aws sts get-caller-identity --profile deploy` calls whose profile is
#     `credential_process = rolehop credential-process`: wall time and STS AssumeRole calls,
#     cached and with --no-cache.
#   bench/refresh.sh [RUNS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-30}
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
target=${CARGO_TARGET_DIR:-$root/target}
# ROLEHOP_BENCH_BIN measures another build (say, a debug one when no release build is at hand).
bin=${ROLEHOP_BENCH_BIN:-$target/release/rolehop}
[[ -n "${ROLEHOP_BENCH_BIN:-}" ]] || cargo build --release --locked -p rolehop --bin rolehop
venv=$ROLEHOP_TOOLS_DIR/venv/bin
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
"$venv/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
pport=$(free_port)
work=$(mktemp -d)
"$venv/python" bench/count_proxy.py "$pport" "http://127.0.0.1:$port" "$work/count" &
proxy=$!
trap 'kill $moto $proxy 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
until curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null; do sleep 0.1; done

export AWS_ENDPOINT_URL=http://127.0.0.1:$pport AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null
export CI_PROJECT_PATH=acme/shop CI_PROJECT_ID=42 CI_PIPELINE_ID=1001 CI_JOB_ID=5005 \
  CI_COMMIT_REF_NAME=main CI_COMMIT_REF_PROTECTED=true CI_ENVIRONMENT_NAME=production
eval "$("$venv/python" bench/seed.py "http://127.0.0.1:$port")"
export ROLEHOP_CACHE_DIR=$work/cache
mkdir -p "$ROLEHOP_CACHE_DIR"
mkdir -p bench/results

# 1. The endpoint.
endpoint=$("$bin" exec --refresh on -- "$venv/python" bench/endpoint_p50.py 2000)
echo "endpoint (botocore's container fetcher, 2000 requests): $endpoint"

# 2. One process: cache hit, uncached chain, the aws CLI's own call.
"$bin" credential-process >/dev/null  # warms the cache
creds=$("$bin" assume --format env)
hyperfine --warmup 3 --runs "$runs" -N --style basic \
  --export-markdown "$work/one.md" --export-json bench/results/refresh.json \
  -n "rolehop credential-process (cache hit)" "$bin credential-process" \
  -n "rolehop credential-process --no-cache (the chain)" "$bin credential-process --no-cache" \
  -n "aws sts get-caller-identity (one aws CLI call)" "bash -c 'eval \"\$1\"; exec $venv/aws sts get-caller-identity --output text >/dev/null' _ \"$creds\""

# 3. Forty aws CLI calls through a credential_process profile.
forty() {
  local extra=$1
  printf '[profile deploy]\nregion = eu-west-1\ncredential_process = %s credential-process %s\n' "$bin" "$extra" > "$work/config"
  rm -rf "$ROLEHOP_CACHE_DIR"/*
  # The proxy's count is cumulative (it keeps it in memory): the script's calls are the
  # difference, not what the file says after it.
  local start end before
  before=$(cat "$work/count" 2>/dev/null || echo 0)
  start=$(date +%s.%N)
  for _ in $(seq 40); do
    AWS_CONFIG_FILE=$work/config "$venv/aws" sts get-caller-identity --profile deploy --output text >/dev/null
  done
  end=$(date +%s.%N)
  printf '%s|%.1f|%s\n' "${extra:-cache}" "$(echo "$end - $start" | bc)" "$(( $(cat "$work/count") - before ))"
}
cached=$(forty "")
uncached=$(forty "--no-cache")

{
  echo "## endpoint"
  echo
  echo "$endpoint"
  echo
  echo "## one process"
  echo
  cat "$work/one.md"
  echo
  echo "## 40 aws CLI calls through credential_process"
  echo
  echo "| credential_process | wall time (s) | STS AssumeRole calls |"
  echo "|---|---:|---:|"
  for r in "$cached" "$uncached"; do IFS='|' read -r n w c <<<"$r"; echo "| $n | $w | $c |"; done
} | tee bench/results/refresh.md
