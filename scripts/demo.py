"""The main job, end to end on one machine: topology -> rendered stacks -> rollout -> a real
GitLab pipeline (gitlab-ci-local, shell executor) whose jobs get credentials through the
broker chain -> the sample application deployed into the right target account, and refused
where it must be. Then the same for claim-gate mode (examples/oidc-gate): ID tokens from a
local GitLab-like issuer (real RS256), verified by `rolehop gate serve` before any AWS call.

Run it through scripts/demo.sh, which installs the tools and builds rolehop. Everything runs
on loopback (moto as the local AWS) in a temporary folder, and everything started here is
stopped on exit, also on Ctrl-C. Exits non-zero when anything did not happen as it must.
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "access-keys"
GATE_EXAMPLE = ROOT / "examples" / "oidc-gate"
GATE_AUDIENCE = "https://gate.rolehop.example.com"
BROKER, PROD, STAGING, DEV = "111111111111", "222222222222", "333333333333", "444444444444"
TOOLS = Path(os.environ.get("ROLEHOP_TOOLS_DIR", ROOT / ".tools"))
VENV = TOOLS / "venv" / "bin"
NODE = TOOLS / "node" / "node_modules" / ".bin"
ROLEHOP = Path(os.environ["ROLEHOP_BIN"])
BOLD, DIM, RED, GREEN, RESET = ("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m") if sys.stdout.isatty() else ("",) * 5

checks = []  # (ok, what)
transcript = []  # everything shown, to prove no secret was
secrets = []  # values that must never be shown


def step(title):
    print(f"\n{BOLD}== {title}{RESET}", flush=True)


def check(ok, what):
    checks.append((ok, what))
    mark = f"{GREEN}ok{RESET}  " if ok else f"{RED}FAIL{RESET}"
    print(f"   {mark} {what}", flush=True)
    return ok


class Moto:
    """A private moto server on loopback, stopped on exit."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}
        # Port 0: the kernel picks a free port and moto names it, so a parallel test's moto
        # can never take it between picking and binding.
        self.proc = subprocess.Popen([str(VENV / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        ports = queue.Queue()

        def read_log():  # drains moto's log for as long as it runs: a full pipe would stall it
            for line in self.proc.stderr:
                m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    ports.put(int(m.group(1)))

        threading.Thread(target=read_log, daemon=True).start()
        try:
            self.port = ports.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise SystemExit("moto did not say which port it listens on within 30 s")
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"moto exited ({self.proc.returncode}) before answering on port {self.port}")
                time.sleep(0.1)
        # Not ready in time: stop the server we started before giving up, or it outlives us.
        self.stop()
        raise SystemExit("moto did not start within 30 s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def query(self, account, service, action, version, **params):
        """A query-protocol call acting in `account` (auth is off: moto routes by the scope)."""
        body = urllib.parse.urlencode({"Action": action, "Version": version, **params}).encode()
        req = urllib.request.Request(self.url + "/", data=body, method="POST")
        req.add_header("Authorization", f"AWS4-HMAC-SHA256 Credential=demo/20260101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0")
        req.add_header("x-moto-account-id", account)
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            return urllib.request.urlopen(req).read().decode()
        except urllib.error.HTTPError as e:
            return e.read().decode()


def xml(text, tag):
    m = re.search(f"<{tag}>(.*?)</{tag}>", text, re.S)
    return m.group(1) if m else None


def run(cmd, cwd=None, env=None, show=True, check_rc=None):
    """Runs a command, echoing it and (indented) its output."""
    shown = " ".join(str(c) for c in cmd)
    print(f"{DIM}   $ {shown}{RESET}", flush=True)
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    out = p.stdout + p.stderr
    transcript.append(out)
    if show:
        for line in out.rstrip().splitlines():
            print(f"     {line}")
    if check_rc is not None and p.returncode != check_rc:
        raise SystemExit(f"`{shown}` exited {p.returncode}, expected {check_rc}")
    return p.returncode, out


def main():
    moto = Moto()
    work = Path(tempfile.mkdtemp(prefix="rolehop-demo-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        demo(moto, work)
    finally:
        moto.stop()
        if os.environ.get("ROLEHOP_DEMO_KEEP"):
            print(f"\n(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [w for ok, w in checks if not ok]
    step("summary")
    for ok, what in checks:
        print(f"   {'ok  ' if ok else 'FAIL'} {what}")
    if failed:
        print(f"\n{RED}{len(failed)} of {len(checks)} checks failed{RESET}")
        return 1
    print(f"\n{GREEN}all {len(checks)} checks passed{RESET}: the broker design held end to end")
    return 0


def local_env(moto, work, rolehop_on_path=True):
    """The environment of every command here: the local AWS, no profile files or metadata
    service, a HOME of its own, and the tools (and rolehop, unless a job must install it) on
    PATH; nothing inherited that names AWS, CI, GitLab or rolehop settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CI_", "GITLAB_", "ROLEHOP_"))}
    path = [str(ROLEHOP.parent)] if rolehop_on_path else []
    env.update({
        "PATH": ":".join([*path, str(VENV), str(NODE), os.environ["PATH"]]),
        "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(work / "home"),
    })
    (work / "home").mkdir()
    return env


def platform_admin(moto, base_env):
    """The broker account's administrator, who runs `rolehop rollout`: its environment."""
    moto.query(BROKER, "iam", "CreateUser", "2010-05-08", UserName="platform-admin")
    keys = moto.query(BROKER, "iam", "CreateAccessKey", "2010-05-08", UserName="platform-admin")
    secrets.append(xml(keys, "SecretAccessKey"))
    return dict(base_env, AWS_ACCESS_KEY_ID=xml(keys, "AccessKeyId"), AWS_SECRET_ACCESS_KEY=xml(keys, "SecretAccessKey"))


def init_repo(repo, env):
    """Makes `repo` the acme/shop project as gitlab-ci-local sees it: it derives CI_PROJECT_PATH
    and friends from the repository and its remote."""
    for cmd in (["init", "-q", "-b", "main"], ["config", "user.email", "dev@acme.example"], ["config", "user.name", "dev"],
                ["remote", "add", "origin", "https://gitlab.example.com/acme/shop.git"],
                ["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]):
        run(["git", *cmd], cwd=repo, env=env, show=False, check_rc=0)


def demo(moto, work):
    base_env = local_env(moto, work)
    print(f"local AWS: moto on {moto.url}; work folder {work}")

    step("1. the acme/shop project: topology, sample app, pipeline that includes rolehop's jobs")
    repo = work / "shop"
    shutil.copytree(EXAMPLE, repo)
    print((repo / "rolehop.toml").read_text().split("\n[environments.prod]")[0].strip().replace("\n", "\n     ").join(["     ", ""]))
    print("     ... (environments prod: protected, 1 account; nonprod: 2 accounts)")

    step("2. rolehop render: CloudFormation for the broker and target accounts, and the GitLab jobs")
    run([ROLEHOP, "render", "--config", "rolehop.toml", "--out", "rolehop"], cwd=repo, env=base_env, check_rc=0)
    rc, out = run([VENV / "cfn-lint", *sorted((repo / "rolehop").glob("*.yaml"))], cwd=repo, env=base_env, show=False)
    check(rc == 0, "cfn-lint passes every rendered template with no error or warning")

    step("3. rolehop rollout with the broker account's administrator: broker stack + one StackSet per environment")
    admin = platform_admin(moto, base_env)
    run([ROLEHOP, "rollout", "--config", "rolehop.toml"], cwd=repo, env=admin, check_rc=0)
    for account, env in [(PROD, "prod"), (STAGING, "nonprod"), (DEV, "nonprod")]:
        role = moto.query(account, "iam", "GetRole", "2010-05-08", RoleName=f"rolehop-{env}-deploy")
        check(xml(role, "Arn") == f"arn:aws:iam::{account}:role/rolehop-{env}-deploy", f"deployment role rolehop-{env}-deploy exists in {account}")
    rc, out = run([ROLEHOP, "rollout", "--config", "rolehop.toml"], cwd=repo, env=admin, check_rc=0)
    check("nothing to change" in out, "a second rollout changes nothing")

    step("4. broker access keys, as `rolehop rotate` stores them: ROLEHOP_BROKER_KEY = <id>:<secret>, masked, protected, environment-scoped")
    broker_keys = {}
    for env, scope in [("prod", "production"), ("nonprod", "staging")]:
        k = moto.query(BROKER, "iam", "CreateAccessKey", "2010-05-08", UserName=f"rolehop-{env}")
        broker_keys[scope] = (xml(k, "AccessKeyId"), xml(k, "SecretAccessKey"))
        secrets.append(broker_keys[scope][1])
        print(f"     {scope}: key {broker_keys[scope][0]} of broker user rolehop-{env} (secret not shown)")
    init_repo(repo, base_env)
    git = ["git"]
    run([*git, "add", "-A"], cwd=repo, env=base_env, show=False, check_rc=0)
    run([*git, "commit", "-q", "-m", "shop with rolehop"], cwd=repo, env=base_env, check_rc=0)

    def pipeline(ref, protected, jobs=()):
        # GitLab hands protected variables only to protected refs: so does this variables file.
        scopes = {s: v for s, v in broker_keys.items() if protected or s != "production"}
        # One variable per environment scope, `<access key id>:<secret>`, as `rolehop rotate` writes it.
        lines = ["ROLEHOP_BROKER_KEY:\n  values:"]
        lines += [f'    "{s}": "{v[0]}:{v[1]}"' for s, v in scopes.items()]
        (repo / ".gitlab-ci-local-variables.yml").write_text("\n".join(lines) + "\n")
        # gitlab-ci-local has no protected branches: the demo says which ref is protected.
        cmd = ["gitlab-ci-local", "--shell-isolation", "--ignore-predefined-vars", "CI_COMMIT_REF_PROTECTED",
               "--variable", f"CI_COMMIT_REF_PROTECTED={'true' if protected else 'false'}",
               "--variable", f"AWS_ENDPOINT_URL={moto.url}", "--variable", "AWS_DEFAULT_REGION=eu-west-1", "--variable", "AWS_REGION=eu-west-1",
               *jobs]
        return run(cmd, cwd=repo, env=base_env)

    def stack_in(account):
        out = moto.query(account, "cloudformation", "DescribeStacks", "2010-05-15", StackName="acme-shop-app")
        return xml(out, "StackStatus")

    step("5. pipeline on protected `main`: every deploy job gets credentials through the chain")
    rc, out = pipeline("main", True)
    check(rc == 0, "the pipeline on protected main succeeds")
    check("PASS  rolehop:deploy:prod:prod-eu" in out, "the prod deploy job ran and passed")
    check(f"assumed-role/rolehop-prod-deploy/gl-" in out, "it deployed as the prod deployment role, its session named after the job")
    check(stack_in(PROD) == "CREATE_COMPLETE", f"the sample stack is now in the prod account {PROD}")
    check(stack_in(STAGING) == "CREATE_COMPLETE" and stack_in(DEV) == "CREATE_COMPLETE", "and in both nonprod accounts")

    step("6. pipeline on unprotected `feature-x`: nonprod deploys, prod is not even scheduled")
    run([*git, "checkout", "-q", "-b", "feature-x"], cwd=repo, env=base_env, check_rc=0)
    moto.query(PROD, "cloudformation", "DeleteStack", "2010-05-15", StackName="acme-shop-app")
    rc, out = pipeline("feature-x", False)
    check(rc == 0 and "PASS  rolehop:deploy:nonprod:staging" in out, "the nonprod deploy on feature-x succeeds")
    check("rolehop:deploy:prod:prod-eu" not in out, "the prod job is not in the feature-x pipeline (rules: protected refs only)")

    step("7. someone forces the prod job on feature-x (e.g. by editing the rules): rolehop itself refuses")
    rc, out = pipeline("feature-x", False, jobs=["rolehop:deploy:prod:prod-eu"])
    check(rc != 0 and "refusing to hand out credentials for protected environment `prod`" in out, "rolehop refused, explaining why (defence in depth)")
    check(stack_in(PROD) in (None, "DELETE_COMPLETE"), "nothing was deployed to prod from feature-x")

    step("8. rolehop audit: the blast radius of every broker credential")
    rc, out = run([ROLEHOP, "audit", "--config", "rolehop.toml", "--fail-on", "high"], cwd=repo, env=base_env)
    check(rc == 0, "no high or critical finding in the rendered design")
    rc, out = run([ROLEHOP, "audit", "--config", "rolehop.toml", "--format", "json"], cwd=repo, env=base_env, show=False)
    # A missing blast radius or a missing credential must fail the checks, not pass them as
    # "reaches nothing".
    radius = {b["principal"]: b["reaches"] for b in json.loads(out)["blast_radius"]}
    prod_user = f"arn:aws:iam::{BROKER}:user/rolehop-prod"
    nonprod_user = f"arn:aws:iam::{BROKER}:user/rolehop-nonprod"
    nonprod_reach = radius.get(nonprod_user)
    prod_reach = radius.get(prod_user)
    check(bool(nonprod_reach) and not any(PROD in r for r in nonprod_reach),
          "the nonprod broker user reaches its own roles and none in the prod account")
    check(bool(prod_reach) and any(f":{PROD}:" in r for r in prod_reach)
          and all(r.split(":")[4] in (BROKER, PROD) for r in prod_reach),
          "the prod broker user reaches the prod deployment role, and only the broker and prod accounts")

    step("9. the access graph (paste into a GitLab comment to see it drawn)")
    run([ROLEHOP, "graph", "--config", "rolehop.toml", "--format", "mermaid"], cwd=repo, env=base_env)

    gate_demo(moto, work, base_env)

    step("14. secret hygiene")
    shown = "".join(transcript)
    check(len(secrets) >= 2 and all(s and s not in shown for s in secrets), f"none of the {len(secrets)} secret keys and ID tokens appeared in any output above")


class Background:
    """A process of ours that names its URL in its first output line (stdout or stderr), whose
    remaining output is kept in `log`; stopped on exit."""

    def __init__(self, cmd, env, pattern, stream="stderr"):
        self.proc = subprocess.Popen([str(c) for c in cmd], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL, text=True)
        self.log = []
        urls = queue.Queue()
        out = self.proc.stdout if stream == "stdout" else self.proc.stderr

        def read():  # drains the output for as long as the process runs
            for line in out:
                m = re.search(pattern, line)
                if m and urls.empty():
                    urls.put(m.group(1))
                else:
                    self.log.append(line.rstrip())

        threading.Thread(target=read, daemon=True).start()
        try:
            self.url = urls.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise SystemExit(f"`{' '.join(str(c) for c in cmd)}` did not start within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def local_issuer(env):
    """The GitLab-like issuer: testkit's, in the process of the test that runs the demo
    (ROLEHOP_TEST_ISSUER_URL), else the `rolehop-test-issuer` binary demo.sh built."""
    if os.environ.get("ROLEHOP_TEST_ISSUER_URL"):
        return None, os.environ["ROLEHOP_TEST_ISSUER_URL"]
    proc = Background([os.environ["ROLEHOP_TEST_ISSUER_BIN"]], env, r'"issuer":"([^"]+)"', stream="stdout")
    return proc, proc.url


def mint(issuer, **claims):
    """An ID token as GitLab would sign it for a job of acme/shop (project 42) with these claims
    changed; the test issuer's stand-in for GitLab handing the job its token."""
    body = json.dumps({"aud": GATE_AUDIENCE, "claims": claims}).encode()
    req = urllib.request.Request(issuer + "/-/mint", data=body, method="POST")
    token = json.loads(urllib.request.urlopen(req, timeout=10).read())["token"]
    secrets.append(token)
    return token


# The application repository's own pipeline in the gate part: rolehop's rendered jobs, the
# deploy command, and the two jobs a developer adds on an unprotected branch to reach prod
# anyway (crates/cli/tests/gate_pipeline.rs runs the same).
GATE_PIPELINE = r"""include:
  - local: rolehop/gitlab-ci.yml
variables:
  ROLEHOP_DEPLOY_SCRIPT: ./app/deploy.sh
# rolehop's own protected-ref check reads CI_* variables; the job author turns it off.
attack:rolehop:
  extends: rolehop:deploy:prod:prod-eu
  script:
    - rolehop exec --config rolehop/jobs/prod.toml --env prod --account prod-eu --allow-unprotected-ref -- sh -c ./app/deploy.sh
# No rolehop at all: the job posts its ID token to the gate itself.
attack:curl:
  stage: deploy
  environment: production
  id_tokens:
    ROLEHOP_ID_TOKEN:
      aud: https://gate.rolehop.example.com
  script:
    - 'code=$(curl -sS -o answer.json -w "%{http_code}" -H "Content-Type: application/json" --data "{\"environment\":\"prod\",\"token\":\"$ROLEHOP_ID_TOKEN\"}" "$ROLEHOP_GATE_URL")'
    - 'echo "the gate answered HTTP $code: $(cat answer.json)"'
    - test "$code" = 200
"""


def gate_demo(moto, work, base_env):
    step("10. claim-gate mode (examples/oidc-gate): render, cfn-lint, rollout to a fresh local AWS")
    started = []
    try:
        issuer_proc, issuer = local_issuer(base_env)
        started.append(issuer_proc)
        print(f"     local GitLab-like issuer (discovery, JWKS, RS256 test key): {issuer}")
        repo = work / "gate-shop"
        shutil.copytree(GATE_EXAMPLE, repo)
        shutil.copytree(ROOT / "examples" / "oidc" / "app", repo / "app")  # the same sample app
        topo = (repo / "rolehop.toml").read_text().replace('issuer = "https://gitlab.example.com"', f'issuer = "{issuer}"')
        (repo / "rolehop.toml").write_text(topo)
        (repo / ".gitlab-ci.yml").write_text(GATE_PIPELINE)
        urllib.request.urlopen(urllib.request.Request(moto.url + "/moto-api/reset", method="POST"))
        run([ROLEHOP, "render", "--config", "rolehop.toml", "--out", "rolehop"], cwd=repo, env=base_env, check_rc=0)
        rc, _ = run([VENV / "cfn-lint", *sorted((repo / "rolehop").glob("*.yaml"))], cwd=repo, env=base_env, show=False)
        check(rc == 0, "cfn-lint passes every rendered gate-mode template with no error or warning")
        ci = (repo / "rolehop" / "gitlab-ci.yml").read_text()
        check(f"aud: {GATE_AUDIENCE}" in ci, "the rendered deploy jobs ask GitLab for an ID token for the gate's audience")
        # moto stores a Lambda function's code but cannot run it: a tiny Linux ELF stands in for
        # the release binary, and the gate runs below as `rolehop gate serve` with the same config.
        elf = work / "rolehop-x86_64-linux-gnu"
        elf.write_bytes(bytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]) + bytes(10) + bytes([62]) + bytes(45))
        admin = platform_admin(moto, base_env)
        run([ROLEHOP, "rollout", "--config", "rolehop.toml", "--gate-code", elf], cwd=repo, env=admin, check_rc=0)
        role = moto.query(PROD, "iam", "GetRole", "2010-05-08", RoleName="rolehop-prod-deploy")
        check(xml(role, "Arn") == f"arn:aws:iam::{PROD}:role/rolehop-prod-deploy", f"deployment role rolehop-prod-deploy exists in {PROD}")
        gate_role = moto.query(BROKER, "iam", "GetRole", "2010-05-08", RoleName="rolehop-prod-gate")
        check(xml(gate_role, "Arn") == f"arn:aws:iam::{BROKER}:role/rolehop-prod-gate", "prod's gate role exists in the broker account, the only one its service role trusts")

        step("11. the prod gate: `rolehop gate serve` with the rendered gate-prod.toml, as its gate role")
        session = moto.query(BROKER, "sts", "AssumeRole", "2011-06-15",
                             RoleArn=f"arn:aws:iam::{BROKER}:role/rolehop-prod-gate", RoleSessionName="gate")
        secrets.append(xml(session, "SecretAccessKey"))
        gate_env = dict(base_env, AWS_ACCESS_KEY_ID=xml(session, "AccessKeyId"),
                        AWS_SECRET_ACCESS_KEY=xml(session, "SecretAccessKey"), AWS_SESSION_TOKEN=xml(session, "SessionToken"))
        gate = Background([ROLEHOP, "gate", "serve", "--listen", "127.0.0.1:0", "--config", repo / "rolehop" / "gate-prod.toml"],
                          gate_env, r"listening on (http://[0-9.:]+)")
        started.append(gate)
        print(f"     gate listening on {gate.url}; its rules for prod:")
        rules = (repo / "rolehop" / "gate-prod.toml").read_text().split("[environments.prod.rules]")[1].strip()
        print("\n".join("       " + line for line in rules.splitlines()))
        init_repo(repo, base_env)
        run(["git", "add", "-A"], cwd=repo, env=base_env, show=False, check_rc=0)
        run(["git", "commit", "-q", "-m", "shop with rolehop's claim gate"], cwd=repo, env=base_env, check_rc=0)

        def pipeline(protected, token, jobs):
            # GitLab would mint the token for the job; gitlab-ci-local mints none, so the token
            # the local issuer signed for this ref is handed to the job as its variable, from
            # the variables file (a command-line argument would be echoed above).
            (repo / ".gitlab-ci-local-variables.yml").write_text(f'ROLEHOP_ID_TOKEN: "{token}"\n')
            return run(["gitlab-ci-local", "--shell-isolation", "--ignore-predefined-vars", "CI_COMMIT_REF_PROTECTED",
                        "--variable", f"CI_COMMIT_REF_PROTECTED={'true' if protected else 'false'}",
                        "--variable", f"AWS_ENDPOINT_URL={moto.url}", "--variable", "AWS_DEFAULT_REGION=eu-west-1",
                        "--variable", "AWS_REGION=eu-west-1", "--variable", f"ROLEHOP_GATE_URL={gate.url}/",
                        *jobs], cwd=repo, env=base_env)

        def stack_in_prod():
            return xml(moto.query(PROD, "cloudformation", "DescribeStacks", "2010-05-15", StackName="acme-shop-app"), "StackStatus")

        step("12. protected `main`: the job's ID token says ref_protected=true; the gate admits it, the job deploys to prod")
        rc, out = pipeline(True, mint(issuer, job_id="7001"), ["rolehop:deploy:prod:prod-eu"])
        check(rc == 0 and "PASS  rolehop:deploy:prod:prod-eu" in out, "the prod deploy job on protected main passed, through the gate")
        check(f"deploying as arn:aws:sts::{PROD}:assumed-role/rolehop-prod-deploy/gl-" in out, "it deployed as the prod deployment role")
        check(stack_in_prod() == "CREATE_COMPLETE", f"the sample stack is now in the prod account {PROD}")

        step("13. unprotected `main` (its `sub` is exactly prod's pattern; only the signed ref_protected differs):"
             " the gate refuses, with or without rolehop")
        moto.query(PROD, "cloudformation", "DeleteStack", "2010-05-15", StackName="acme-shop-app")
        evil = mint(issuer, job_id="7002", ref_protected="false")
        rc, out = pipeline(False, evil, ["attack:rolehop", "attack:curl"])
        check(rc != 0 and "the gate said: HTTP 403: rule `ref_protected` refused the job" in out,
              "through rolehop (its own check switched off by the job author): the gate answered 403, rule `ref_protected`")
        check("the gate answered HTTP 403: " in out and '"rule":"ref_protected"' in out,
              "with curl and no rolehop: the same 403 naming rule `ref_protected`")
        check(stack_in_prod() in (None, "DELETE_COMPLETE") and "deploying as" not in out, "nothing was deployed to prod from the unprotected ref")
        print("     the gate's log (one line per request, never a token):")
        print("\n".join("       " + line for line in gate.log))
        transcript.append("\n".join(gate.log))
        check(sum("403 env=" in line for line in gate.log) == 2 and sum("200 env=" in line for line in gate.log) == 1,
              "the gate logged one admitted and two refused requests")
    finally:
        for p in started:
            if p:
                p.stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: stopped moto and removed the work folder")
        sys.exit(130)
