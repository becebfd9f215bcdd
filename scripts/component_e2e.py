"""rolehop in a job through the CI/CD component (templates/deploy.yml), end to end on one
machine: a local package registry serves the rolehop binary (good, tampered, truncated, behind
a redirect), the component's verified install is attacked directly, then a real pipeline
(gitlab-ci-local, shell executor) includes the component, installs the pinned rolehop from
that registry, checks its SHA-256 and deploys through the broker chain against moto; the same
pipeline pointed at a tampered artifact is refused before anything runs.

Run by crates/cli/tests/component.rs (with ROLEHOP_BIN and ROLEHOP_TOOLS_DIR set). Reuses the
demo's helpers (scripts/demo.py): its moto server, checks and secret scan.
"""

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402
from demo import BROKER, DEV, STAGING, Moto, check, run, step, xml  # noqa: E402

ROOT = demo.ROOT
ARTIFACT = "rolehop-x86_64-linux-gnu"


class Registry:
    """A generic-package registry on loopback: /<variant>/<version>/<file>. `redirect` answers
    302 to the good artifact, as GitLab does when packages live in object storage."""

    def __init__(self, binary: bytes, version: str):
        self.version = version
        flipped = bytearray(binary)
        flipped[len(flipped) // 2] ^= 0xFF
        self.files = {
            "good": binary,
            "tampered": bytes(flipped),
            "truncated": binary[: len(binary) // 2],
        }
        self.seen = []  # (path, JOB-TOKEN header or None)
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                registry.seen.append((self.path, self.headers.get("JOB-TOKEN")))
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{registry.url}/good/{parts[1]}/{parts[2]}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = registry.files.get(parts[0]) if len(parts) == 3 and parts[1:] == [registry.version, ARTIFACT] else None
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def install_snippet():
    """The component's before_script, exactly as a job runs it."""
    docs = list(yaml.safe_load_all((ROOT / "templates" / "deploy.yml").read_text()))
    (job,) = docs[1].values()
    return "\n".join(job["before_script"])


def main():
    version = subprocess.run([str(demo.ROLEHOP), "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    work = Path(tempfile.mkdtemp(prefix="rolehop-component-"))
    # The published artifact is a stripped release build; strip the binary under test likewise
    # so every download in this run stays small.
    subprocess.run(["strip", "-o", str(work / ARTIFACT), str(demo.ROLEHOP)], check=True)
    binary = (work / ARTIFACT).read_bytes()
    sha = hashlib.sha256(binary).hexdigest()
    registry = Registry(binary, version)
    moto = Moto()
    try:
        attack_the_install(registry, version, sha, work)
        pipeline_through_the_component(moto, registry, version, sha, work)
    finally:
        moto.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    failed = [w for ok, w in demo.checks if not ok]
    step("summary")
    print(f"{len(demo.checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def attack_the_install(registry, version, sha, work):
    step("1. the component's verified install, attacked directly")
    snippet = install_snippet()

    def install(variant, pin=sha, token=None, url=None, want_version=version):
        tmp = Path(tempfile.mkdtemp(prefix=f"{variant}-", dir=work))
        env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "CI_JOB_ID": "7",
               "ROLEHOP_VERSION": want_version, "ROLEHOP_SHA256": pin,
               "ROLEHOP_URL": url or f"{registry.url}/{variant}/{version}/{ARTIFACT}"}
        if token:
            env["CI_JOB_TOKEN"] = token
        # `command -v rolehop` after the snippet: what the job's script would find.
        p = subprocess.run(["sh", "-c", snippet + "\ncommand -v rolehop"], env=env, capture_output=True, text=True)
        rc, out = p.returncode, p.stdout + p.stderr
        demo.transcript.append(out)
        print(f"     install from /{variant}: exit {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
        installed = list(tmp.rglob("rolehop"))
        return rc, out, installed

    rc, out, installed = install("good")
    check(rc == 0 and f"rolehop {version}, SHA-256 {sha} verified" in out and len(installed) == 1,
          "the pinned release installs, is verified and runs")
    check(bool(installed) and installed[0].stat().st_mode & 0o777 == 0o755 and installed[0].parent.stat().st_mode & 0o777 == 0o700,
          "the installed binary is 0755 in a private 0700 folder")
    for variant, why in [("tampered", "a tampered artifact"), ("truncated", "a partial download")]:
        rc, out, installed = install(variant)
        check(rc != 0 and "SHA-256 mismatch" in out and not installed, f"{why} is refused before it runs, and nothing is left on PATH")
    rc, out, installed = install("good", pin="")
    check(rc != 0 and "no SHA-256 pinned" in out and not installed, "a missing checksum is refused: nothing unverified runs")
    rc, out, installed = install("good", pin="abc")
    check(rc != 0 and "64" in out and not installed, "a malformed checksum is refused")
    rc, out, installed = install("good", url=f"http://packages.example.com/rolehop/{version}/{ARTIFACT}")
    check(rc != 0 and "plain http" in out and not installed, "plain http off the machine is refused (https only)")
    rc, out, installed = install("missing")
    check(rc != 0 and "download of" in out and not installed, "a missing artifact fails the job with the URL")
    registry.seen.clear()
    demo.secrets.append("job-token-value-1234")
    rc, out, installed = install("redirect", token="job-token-value-1234")
    tokens = dict(registry.seen)
    check(rc == 0 and len(installed) == 1, "a registry that redirects to object storage still installs")
    check(tokens.get(f"/redirect/{version}/{ARTIFACT}") == "job-token-value-1234"
          and f"/good/{version}/{ARTIFACT}" in tokens and tokens[f"/good/{version}/{ARTIFACT}"] is None,
          "the job token goes to the registry only, never to the redirect target")
    rc, out, installed = install("good", url=f"{registry.url}/good/{version}/{ARTIFACT}", want_version="9.9.9")
    check(rc != 0 and f"belongs to `rolehop {version}`" in out, "a checksum pinned for another release than the one asked for is refused")


def pipeline_through_the_component(moto, registry, version, sha, work):
    # No rolehop on PATH: the job must install it through the component.
    base_env = demo.local_env(moto, work, rolehop_on_path=False)
    check(shutil.which("rolehop", path=base_env["PATH"]) is None, "the runner has no rolehop of its own")

    step("2. the platform team rolls out the access-keys example")
    repo = work / "shop"
    shutil.copytree(demo.EXAMPLE, repo)
    shutil.copytree(ROOT / "templates", repo / "templates")
    rolehop = str(demo.ROLEHOP)
    # pipeline() below renders the jobs; rollout renders the stacks itself from the topology.
    (repo / ".gitlab-ci.yml").write_text("stages: [deploy]\ninclude:\n  - local: rolehop/gitlab-ci.yml\n")
    run([rolehop, "rollout", "--config", "rolehop.toml"], cwd=repo, env=demo.platform_admin(moto, base_env), check_rc=0, show=False)
    k = moto.query(BROKER, "iam", "CreateAccessKey", "2010-05-08", UserName="rolehop-nonprod")
    key_id, secret = xml(k, "AccessKeyId"), xml(k, "SecretAccessKey")
    demo.secrets.append(secret)
    # The broker key as GitLab holds it: one masked, protected variable scoped to `staging`.
    (repo / ".gitlab-ci-local-variables.yml").write_text(
        f'ROLEHOP_BROKER_KEY:\n  values:\n    "staging": "{key_id}:{secret}"\n')
    demo.init_repo(repo, base_env)

    def pipeline(variant):
        # The platform team's topology says how jobs get rolehop ([pipeline]); `render` then
        # writes the project's jobs as includes of the component (here: this project's own
        # component at this commit, which is how gitlab-ci-local runs one).
        topology = (demo.EXAMPLE / "rolehop.toml").read_text() + "\n".join([
            "", "[pipeline]",
            'component = "$CI_SERVER_HOST/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA"',
            'image = "registry.example.com/acme/deploy-tools:1"',
            f'rolehop_version = "{version}"',
            f'rolehop_sha256 = "{sha}"',
            f'package_registry = "{registry.url}/{variant}"',
            'deploy_script = "aws sts get-caller-identity --query Arn --output text"', ""])
        (repo / "rolehop.toml").write_text(topology)
        run([rolehop, "render", "--config", "rolehop.toml", "--out", "rolehop"], cwd=repo, env=base_env, check_rc=0, show=False)
        run(["git", "add", "-A"], cwd=repo, env=base_env, show=False, check_rc=0)
        run(["git", "commit", "-q", "-m", f"deploy through the component ({variant})"], cwd=repo, env=base_env, show=False, check_rc=0)
        return run(["gitlab-ci-local", "--force-shell-executor", "--shell-isolation",
                    "--ignore-predefined-vars", "CI_COMMIT_REF_PROTECTED", "--variable", "CI_COMMIT_REF_PROTECTED=false",
                    "--variable", f"AWS_ENDPOINT_URL={moto.url}", "--variable", "AWS_REGION=eu-west-1",
                    "--variable", "AWS_DEFAULT_REGION=eu-west-1"], cwd=repo, env=base_env)

    step("3. the rendered pipeline includes the component: pinned rolehop installed, verified, deploying through the chain")
    rc, out = pipeline("good")
    rendered = yaml.safe_load((repo / "rolehop" / "gitlab-ci.yml").read_text())
    check([i["component"] for i in rendered["include"]] == ["$CI_SERVER_HOST/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA"] * 3
          and ".rolehop" not in rendered, "render wrote the three deploy jobs as includes of the component")
    check(rc == 0 and "PASS  rolehop:deploy:nonprod:staging" in out and "PASS  rolehop:deploy:nonprod:dev" in out,
          "both nonprod jobs from the component pass")
    check("rolehop:deploy:prod:prod-eu" not in out, "the prod job is not scheduled on an unprotected branch (run_if from the topology)")
    check(f"rolehop {version}, SHA-256 {sha} verified" in out, "each job installed the pinned release after checking its SHA-256")
    check(f"arn:aws:sts::{STAGING}:assumed-role/rolehop-nonprod-deploy/gl-" in out
          and f"arn:aws:sts::{DEV}:assumed-role/rolehop-nonprod-deploy/gl-" in out,
          "the deploy script ran as each account's deployment role, its session named after the job")

    step("4. the same pipeline pointed at a tampered artifact")
    rc, out = pipeline("tampered")
    check(rc != 0 and "SHA-256 mismatch" in out, "the job is refused with the checksum mismatch")
    check("assumed-role" not in out, "nothing ran: no credentials were requested")

    step("5. secret hygiene")
    shown = "".join(demo.transcript)
    check(all(s and s not in shown for s in demo.secrets), f"none of the {len(demo.secrets)} secret keys appeared in any output")


if __name__ == "__main__":
    sys.exit(main())
