#!/usr/bin/env bash
# Benchmark: `rolehop audit` over synthetic organisations of N accounts x 20 roles, from
# exports on disk (one `get-account-authorization-details` file per account), side by side in
# one run with cloudsplaining (`cloudsplaining scan`, one account per run, as it works) over
# the same files. Release build. Wall time, CPU time (user + sys) and peak RSS from the
# child's rusage (bench/measure.py, to the microsecond); the load average is printed with
# every figure, since a shared machine makes wall times noisy (CPU time much less so).
#   bench/audit-scale.sh [SIZES] [RUNS] [CLOUDSPLAINING_SAMPLE]
#   bench/audit-scale.sh "1000 3000 10000" 3 30
# cloudsplaining takes about a second per account, so it runs over the first SAMPLE target
# accounts of each size (measured), and its total for the organisation is that per-account
# mean times the number of accounts (an estimate, printed as one).
# rolehop's runs go round the sizes (1,000, 3,000, 10,000, 1,000, ...) rather than size after
# size: a growth ratio divides one size's median by another's, and on a shared machine the
# load drifts over a minute, so sizes measured minutes apart saw different machines (one run
# measured the 1,000-account audit at load 0.1 and the 10,000-account one at load 0.8, and
# the ratio moved by about 15%).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
sizes=${1:-"1000 10000"}
runs=${2:-3}
sample=${3:-20}
export ROLEHOP_TOOLS_DIR=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
target=${CARGO_TARGET_DIR:-$root/target}
# One cargo invocation: two would unify features differently and rebuild shared crates.
cargo build --release --locked -p rolehop --bin rolehop -p rolehop-audit --example synth_org
venv=$ROLEHOP_TOOLS_DIR/venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
# Runs "$@"; prints "wall_s cpu_s max_rss_kib" to the microsecond (bench/measure.py).
measure() { python3 "$root/bench/measure.py" "$@"; }
# min / median of the numbers on stdin.
minmed() { sort -g | awk '{a[NR]=$1} END {printf "%.3f / %.3f", a[1], a[int((NR+1)/2)]}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "release build; $(nproc) cores; $(uptime)"
echo
echo "| accounts x roles | tool | runs | wall min / median (s) | CPU user+sys min / median (s) | peak RSS (MiB) | load avg (1/5/15 min) |"
echo "|---:|---|---:|---:|---:|---:|---|"
declare -A cpu_med wall_med walls_of cpus_of rss_of
summary=()
for n in $sizes; do
  "$target/release/examples/synth_org" "$n" 20 --write "$work/org-$n" >/dev/null
  walls_of[$n]=""; cpus_of[$n]=""; rss_of[$n]=0
done
for _ in $(seq "$runs"); do
  for n in $sizes; do
    read -r w c r < <(measure "$target/release/rolehop" audit --authz-details "$work/org-$n"/*.json --format json)
    walls_of[$n]+="$w "; cpus_of[$n]+="$c "
    if (( r > rss_of[$n] )); then rss_of[$n]=$r; fi
  done
done
rh_load=$(load) # when rolehop's runs ended: its rows share it
for n in $sizes; do
  dir=$work/org-$n
  read -r -a walls <<<"${walls_of[$n]}"; read -r -a cpus <<<"${cpus_of[$n]}"
  wall_med[$n]=$(printf '%s\n' "${walls[@]}" | median)
  cpu_med[$n]=$(printf '%s\n' "${cpus[@]}" | median)
  echo "| $n x 20 | rolehop audit (whole organisation, one process) | $runs | $(printf '%s\n' "${walls[@]}" | minmed) | $(printf '%s\n' "${cpus[@]}" | minmed) | $((rss_of[$n] / 1024)) | $rh_load |"
  # cloudsplaining: one account per run, as a user runs it, over the first $sample target
  # accounts (20 roles each), the same files rolehop read.
  # (sed, not head: head's early exit would kill ls with SIGPIPE, fatal under pipefail)
  files=$(ls "$dir"/acct-2*.json | sed -n "1,${sample}p")
  mkdir -p "$work/cs"; cswall=0; cscpu=0; csrss=0; k=0
  for f in $files; do
    read -r w c r < <(measure "$venv/cloudsplaining" scan --input-file "$f" --output "$work/cs" --skip-open-report)
    cswall=$(echo "$cswall + $w" | bc -l); cscpu=$(echo "$cscpu + $c" | bc -l)
    if (( r > csrss )); then csrss=$r; fi; k=$((k + 1))
  done
  per_wall=$(echo "$cswall / $k" | bc -l); per_cpu=$(echo "$cscpu / $k" | bc -l)
  printf '| %s x 20 | cloudsplaining scan, per account (%d accounts measured) | %d | %.2f mean per account | %.2f mean per account | %d | %s |\n' \
    "$n" "$k" "$k" "$per_wall" "$per_cpu" "$((csrss / 1024))" "$(load)"
  # rolehop per account: its whole-organisation median divided by the accounts it read.
  rh_cpu=$(echo "${cpu_med[$n]} / ($n + 2)" | bc -l)
  summary+=("$(printf '%s accounts: cloudsplaining %.3f s CPU per account (measured, %d accounts) vs rolehop %.5f s CPU per account (measured, whole organisation / %d): %.0fx; cloudsplaining over all %d accounts would take about %.0f s CPU (%.0f s wall), extrapolated from the sample, vs rolehop %.2f s CPU (%.2f s wall) measured' \
    "$n" "$per_cpu" "$k" "$rh_cpu" "$((n + 2))" "$(echo "$per_cpu / $rh_cpu" | bc -l)" "$((n + 2))" \
    "$(echo "$per_cpu * ($n + 2)" | bc -l)" "$(echo "$per_wall * ($n + 2)" | bc -l)" "${cpu_med[$n]}" "${wall_med[$n]}")")
  rm -rf "$dir" "$work/cs"
done
echo
for s in "${summary[@]}"; do echo "- $s"; done
read -r -a ns <<<"$sizes"
if (( ${#ns[@]} > 1 )); then
  a=${ns[0]}; b=${ns[${#ns[@]}-1]}
  printf -- '- growth %s -> %s accounts (x%.0f): CPU x%.2f, wall x%.2f (medians)\n' "$a" "$b" \
    "$(echo "$b / $a" | bc -l)" "$(echo "${cpu_med[$b]} / ${cpu_med[$a]}" | bc -l)" \
    "$(echo "${wall_med[$b]} / ${wall_med[$a]}" | bc -l)"
fi
echo "- end: $(uptime)"
