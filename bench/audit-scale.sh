#!/usr/bin/env bash
# Benchmark: `rolehop audit` over synthetic organisations of N accounts x 20 roles, from
# exports on disk (one `get-account-authorization-details` file per account), side by side in
# one run with cloudsplaining (`cloudsplaining scan`, one account per run, as it works) over
# the same files. Wall time and peak RSS from /usr/bin/time -v; the machine's load average is
# printed with every figure, since a shared machine makes wall times noisy.
#   bench/audit-scale.sh [SIZES] [RUNS] [CLOUDSPLAINING_SAMPLE]
#   bench/audit-scale.sh "1000 10000" 3 20
# cloudsplaining takes about a second per account, so it runs over the first SAMPLE target
# accounts of each size and its total is that mean times the number of accounts (stated as an
# estimate in the output).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
sizes=${1:-"1000 10000"}
runs=${2:-3}
sample=${3:-20}
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked -p rolehop --bin rolehop
cargo build --release --locked -p rolehop-audit --example synth_org
venv=$ROLEHOP_TOOLS_DIR/venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
# Runs "$@" under /usr/bin/time -v; prints "wall_s max_rss_kib".
measure() {
  /usr/bin/time -v "$@" >/dev/null 2>"$work/time.txt" || { cat "$work/time.txt" >&2; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  echo "$wall $rss"
}

echo "| accounts x roles | tool | runs | wall min / median (s) | peak RSS (MiB) | load avg (1/5/15 min) |"
echo "|---:|---|---:|---:|---:|---|"
for n in $sizes; do
  dir=$work/org-$n
  "$target/release/examples/synth_org" "$n" 20 --write "$dir" >/dev/null
  walls=(); rss=0
  for _ in $(seq "$runs"); do
    read -r w r < <(measure "$target/release/rolehop" audit --authz-details "$dir"/*.json --format json)
    walls+=("$w"); (( r > rss )) && rss=$r
  done
  sorted=$(printf '%s\n' "${walls[@]}" | sort -g)
  min=$(echo "$sorted" | head -1); med=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "| $n x 20 | rolehop audit (whole organisation, one process) | $runs | $min / $med | $((rss / 1024)) | $(load) |"
  # cloudsplaining: one account per run, as a user runs it, over the first $sample accounts.
  files=$(ls "$dir"/acct-2*.json | head -n "$sample")
  mkdir -p "$work/cs"; t0=$(date +%s.%N); csrss=0; k=0
  for f in $files; do
    read -r _ r < <(measure "$venv/cloudsplaining" scan --input-file "$f" --output "$work/cs" --skip-open-report)
    (( r > csrss )) && csrss=$r; k=$((k + 1))
  done
  t1=$(date +%s.%N)
  per=$(echo "($t1 - $t0) / $k" | bc -l)
  est=$(echo "$per * ($n + 2)" | bc -l)
  printf '| %s x 20 | cloudsplaining scan, %d accounts measured | %d | %.2f per account; estimated %.0f for %d accounts (%.0fx rolehop median) | %d | %s |\n' \
    "$n" "$k" "$k" "$per" "$est" "$((n + 2))" "$(echo "$est / $med" | bc -l)" "$((csrss / 1024))" "$(load)"
  rm -rf "$dir" "$work/cs"
done
