"""Builds rolehop's minimal OCI image without a container daemon: one layer holding the
binary, the glibc runtime it links (ld-linux, libc and the few libraries `ldd` names, each
under its own path), a pinned CA bundle, /etc/passwd and /etc/group naming a non-root user,
and two empty folders (the user's home and /tmp); nothing else: no shell, no package manager.

Reproducible: the same binary and CA bundle give the same image digest, on any machine and at
any time. Every file has a fixed owner and mtime (SOURCE_DATE_EPOCH, default 0), entries are
sorted, and gzip writes no timestamp or file name.

    python3 scripts/build-image.py --binary dist/rolehop-x86_64-linux-gnu \
        --ca-bundle <certifi's cacert.pem> --lib /lib64/ld-linux-x86-64.so.2 ... \
        --version 0.1.0 --out dist/image

(scripts/build-image.sh finds the libraries and the pinned CA bundle)

writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) tagged with the version,
and prints the manifest digest. Read it with `skopeo inspect oci:dist/image:0.1.0`, unpack it
with `umoci unpack`, copy it to a registry with `skopeo copy oci:dist/image:0.1.0 docker://...`.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

UID = GID = 65532  # the conventional "nonroot" id of distroless images
USER_HOME = "home/rolehop"


def parents(path: str):
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def layer_tar(binary: bytes, ca_bundle: bytes, libs: dict, mtime: int) -> bytes:
    lib_entries = {}
    for path, data in libs.items():
        path = path.lstrip("/")
        for d in parents(path):
            lib_entries[d] = (d, None, 0o755, 0)
        lib_entries[path] = (path, data, 0o755, 0)
    entries = [
        ("etc", None, 0o755, 0),
        ("etc/group", f"root:x:0:\nrolehop:x:{GID}:\n".encode(), 0o644, 0),
        ("etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\nrolehop:x:{UID}:{GID}:rolehop:/{USER_HOME}:/sbin/nologin\n".encode(), 0o644, 0),
        ("etc/ssl", None, 0o755, 0),
        ("etc/ssl/certs", None, 0o755, 0),
        ("etc/ssl/certs/ca-certificates.crt", ca_bundle, 0o644, 0),
        ("home", None, 0o755, 0),
        (USER_HOME, None, 0o700, UID),
        ("tmp", None, 0o1777, 0),
        ("usr", None, 0o755, 0),
        ("usr/local", None, 0o755, 0),
        ("usr/local/bin", None, 0o755, 0),
        ("usr/local/bin/rolehop", binary, 0o755, 0),
    ]
    names = {e[0] for e in entries}
    entries += [e for name, e in lib_entries.items() if name not in names]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, owner in sorted(entries):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, mtime
            info.uid = info.gid = owner
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and no file name: the compressed bytes depend on the content only.
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()


def blob(out: Path, data: bytes, media_type: str) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(binary: bytes, ca_bundle: bytes, libs: dict, labels: dict, version: str, out: Path, mtime: int) -> str:
    if out.exists():
        shutil.rmtree(out)
    (out / "blobs" / "sha256").mkdir(parents=True)
    tar = layer_tar(binary, ca_bundle, libs, mtime)
    layer = blob(out, gzip_bytes(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = blob(out, canonical({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": ["/usr/local/bin/rolehop"],
            "Env": ["PATH=/usr/local/bin", "HOME=/" + USER_HOME, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "WorkingDir": "/" + USER_HOME,
            "Labels": {"org.opencontainers.image.title": "rolehop", "org.opencontainers.image.version": version, **labels},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "history": [{"created": created, "created_by": "scripts/build-image.py"}],
    }), "application/vnd.oci.image.config.v1+json")
    manifest = blob(out, canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
        "annotations": {"org.opencontainers.image.version": version},
    }), "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": version}
    manifest["platform"] = {"architecture": "amd64", "os": "linux"}
    (out / "index.json").write_bytes(canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest]}))
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    return manifest["digest"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True, type=Path)
    p.add_argument("--ca-bundle", required=True, type=Path)
    p.add_argument("--version", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--lib", action="append", default=[], metavar="PATH",
                   help="a shared library the binary loads, stored under this same path (symlinks resolved)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    libs = {lib: Path(lib).resolve().read_bytes() for lib in a.lib}
    labels = dict(label.split("=", 1) for label in a.label)
    print(build(a.binary.read_bytes(), a.ca_bundle.read_bytes(), libs, labels, a.version, a.out, mtime))


if __name__ == "__main__":
    main()
