#!/usr/bin/env bash
# Fails when code, scripts or CI read anything outside the clone: the project's tests and tools
# must pass in a fresh clone with nothing beside it (issue 11). It looks for
#   - the sibling folder the team keeps notes and third-party data in (`shared/testdata`,
#     `shared/conformance`, `../shared`);
#   - a walk up the directory tree in tests (`.ancestors()`, a `.parent()` loop on
#     CARGO_MANIFEST_DIR), which is how such inputs were found before;
#   - more than two `..` from a crate (crates/<name>/ is two levels below the workspace root),
#     or more than one from a script (scripts/, bench/, .ci/ are one level below it); a line
#     from a deeper folder that stays inside says so with `check-paths: stays in crates/`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dirs=(crates scripts bench .ci)
fail=0
report() { echo "check-paths: $1:"; echo "$2" | sed 's/^/  /'; fail=1; }
self=scripts/check-paths.sh
hits=$(grep -rnE '(\.\./|\b)shared/(testdata|conformance|notes|hooks)|\.\./shared\b' "${dirs[@]}" | grep -v "^$self:" || true)
[ -z "$hits" ] || report "reads the sibling shared/ folder" "$hits"
hits=$(grep -rnE '\.ancestors\(\)|while let Some\(d\) = dir' crates --include='*.rs' || true)
[ -z "$hits" ] || report "walks up the directory tree" "$hits"
hits=$(grep -rnE '(\.\./){3}|"\.\./\.\./\.\."|join\("\.\."\)\.join\("\.\."\)\.join\("\.\."\)' crates | grep -v 'check-paths: stays in crates/' || true)
[ -z "$hits" ] || report "leaves the workspace from a crate" "$hits"
hits=$(grep -rnE '(\.\./){2}|/\.\./\.\.' scripts bench .ci | grep -v "^$self:" || true)
[ -z "$hits" ] || report "leaves the repository from a script" "$hits"
[ "$fail" = 0 ] && echo "check-paths: nothing reads outside the clone"
exit "$fail"
