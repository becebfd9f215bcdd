#!/usr/bin/env bash
# Fuzz smoke run (opt-in, not part of scripts/test.sh): builds the fuzz crate in fuzz/ and runs
# each target for ~20 s from its committed corpus (fuzz/corpus/<target>), failing on any
# crash. cargo-fuzz is installed once into $ROLEHOP_TOOLS_DIR/cargo (cached like the venv).
# The machine has only a stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz's -Z flags through.
#   scripts/fuzz-smoke.sh [seconds-per-target] [target...]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
secs=${1:-20}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(topology policy gaad id_token gate)

CARGO_FUZZ_VERSION=0.13.2
if [[ "$("$tools/cargo/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools/cargo" >&2
  cargo install --quiet --locked --root "$tools/cargo" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export PATH=$tools/cargo/bin:$PATH
export RUSTC_BOOTSTRAP=1
# Its own target dir: the sanitizer flags would otherwise rebuild the main workspace's deps.
export CARGO_TARGET_DIR=${ROLEHOP_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}-fuzz}

cd "$root/fuzz"
cargo fuzz build
status=0
for t in "${targets[@]}"; do
  # Run on a scratch copy so new inputs found here do not dirty the committed corpus.
  scratch=$(mktemp -d)
  cp -r "corpus/$t/." "$scratch/"
  log=$scratch.log
  if cargo fuzz run "$t" "$scratch" -- -max_total_time="$secs" -timeout=5 -print_final_stats=1 >"$log" 2>&1; then
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz-smoke: $t ok (${execs:-?} execs in ${secs}s)"
  else
    echo "fuzz-smoke: $t FAILED; the crashing input is in fuzz/artifacts/$t/:" >&2
    grep -a -A20 'ERROR\|panicked' "$log" | head -40 >&2
    status=1
  fi
  rm -rf "$scratch" "$log"
done
exit $status
