#!/usr/bin/env bash
# Builds rolehop as a portable x86_64 Linux binary: linked against an old glibc baseline
# (2.17, the manylinux2014 floor: CentOS 7, Amazon Linux 2, every Debian/Ubuntu runner image
# of the last decade) with cargo-zigbuild, whose zig toolchain comes from PyPI (`ziglang`).
# Then checks the highest GLIBC symbol version the binary needs and refuses to publish one
# that needs more than the baseline. Writes dist/rolehop-x86_64-linux-gnu and its .sha256.
#
# Other targets, and what they need that this machine cannot give: aarch64-linux-gnu builds
# the same way (rustup target add aarch64-unknown-linux-gnu) but cannot be run here to be
# checked (no aarch64 machine or binfmt); musl (Alpine images) needs the musl target from
# rustup, which this workplace cannot download; macOS and Windows need their SDKs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd -P)
GLIBC_BASELINE=${ROLEHOP_GLIBC_BASELINE:-2.17}
ZIG_PINS=("ziglang==0.15.1" "cargo-zigbuild==0.24.0")
stamp="${ZIG_PINS[*]} @ $tools/zig"
if [[ "$(cat "$tools/zig/.rolehop-stamp" 2>/dev/null)" != "$stamp" ]] || ! "$tools/zig/venv/bin/cargo-zigbuild" --version >/dev/null 2>&1; then
  echo "build-portable: installing ${ZIG_PINS[*]} into $tools/zig" >&2
  rm -rf "$tools/zig" && mkdir -p "$tools/zig"
  python3 -m venv "$tools/zig/venv"
  "$tools/zig/venv/bin/pip" install --quiet --disable-pip-version-check "${ZIG_PINS[@]}"
  echo "$stamp" > "$tools/zig/.rolehop-stamp"
fi
# cargo-zigbuild finds zig through `python -m ziglang` when the venv is first on PATH.
export PATH="$tools/zig/venv/bin:$PATH"
target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$root/target}
cargo zigbuild --release --locked -p rolehop --target "$target.$GLIBC_BASELINE"
bin="$target_dir/$target/release/rolehop"

# The highest versioned glibc symbol the binary imports must not exceed the baseline.
needed=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
if [[ "$(printf '%s\n%s\n' "$needed" "$GLIBC_BASELINE" | sort -V | tail -n 1)" != "$GLIBC_BASELINE" ]]; then
  echo "build-portable: $bin needs GLIBC_$needed, above the baseline $GLIBC_BASELINE" >&2
  exit 1
fi
mkdir -p dist
cp "$bin" dist/rolehop-x86_64-linux-gnu
(cd dist && sha256sum rolehop-x86_64-linux-gnu > rolehop-x86_64-linux-gnu.sha256)
echo "build-portable: dist/rolehop-x86_64-linux-gnu needs at most GLIBC_$needed (baseline $GLIBC_BASELINE), $(stat -c %s dist/rolehop-x86_64-linux-gnu) bytes"
cat dist/rolehop-x86_64-linux-gnu.sha256
