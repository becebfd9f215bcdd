#!/usr/bin/env bash
# Builds the minimal OCI image (scripts/build-image.py) from a rolehop binary, by default the
# portable one of scripts/build-portable.sh, then checks it with standard OCI tooling from
# Debian's packages: skopeo reads it, umoci unpacks it, and runc runs `rolehop --version` in
# it as the non-root user (crun, the other runtime, refuses this machine's hybrid cgroup
# mounts). Builds twice and requires the same digest (reproducible).

#
#   scripts/build-image.sh [BINARY]   -> dist/image (OCI layout, tag = rolehop's version)
#
# The glibc runtime comes from this machine's Debian libc6/libgcc-s1 packages; their versions
# are recorded as image labels, since they are part of the image's input.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${1:-dist/rolehop-x86_64-linux-gnu}
tools=${ROLEHOP_TOOLS_DIR:-$root/.tools}
bash scripts/tools.sh
for tool in skopeo umoci runc; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo umoci runc >/dev/null; break; }
done
# The CA bundle is certifi's, pinned in scripts/tools/requirements.lock: the same bundle on
# every machine, so the digest does not depend on the host's ca-certificates.
ca=$("$tools/venv/bin/python" -c 'import certifi; print(certifi.where())')
certifi=$("$tools/venv/bin/python" -c 'import certifi; print(certifi.__version__)')
version=$("$bin" --version | awk '{print $2}')
libs=()
while read -r lib; do libs+=(--lib "$lib"); done < <(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
labels=(--label "org.rolehop.ca-bundle=certifi $certifi"
  --label "org.rolehop.glibc-runtime=libc6 $(dpkg-query -W -f '${Version}' libc6), libgcc-s1 $(dpkg-query -W -f '${Version}' libgcc-s1)")
first=$(python3 scripts/build-image.py --binary "$bin" --ca-bundle "$ca" "${libs[@]}" "${labels[@]}" --version "$version" --out dist/image)
second=$(python3 scripts/build-image.py --binary "$bin" --ca-bundle "$ca" "${libs[@]}" "${labels[@]}" --version "$version" --out dist/image.again)
rm -rf dist/image.again
[[ "$first" == "$second" ]] || { echo "build-image: not reproducible: $first vs $second" >&2; exit 1; }
skopeo inspect "oci:dist/image:$version" > dist/image.inspect.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umoci unpack --image "dist/image:$version" "$work/bundle" >/dev/null
# No terminal, and `--version` as the command: the rest of the runtime config is umoci's.
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/usr/local/bin/rolehop", "--version"]
json.dump(c, open(p, "w"))
PY
if out=$(runc run --bundle "$work/bundle" "rolehop-image-check-$$" 2>&1); then
  echo "build-image: runc ran it as uid $(python3 -c "import json;print(json.load(open('$work/bundle/config.json'))['process']['user']['uid'])"): $out"
else
  echo "build-image: runc could not run the image here: $out" >&2
  exit 2
fi
echo "build-image: dist/image:$version $first ($(du -sh dist/image | cut -f1))"
