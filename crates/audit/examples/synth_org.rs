//! Benchmark: generates a synthetic organisation (a broker account with the rolehop pattern,
//! a security account, N target accounts of M roles each, plus noise) as
//! authorization-details exports, audits it, and prints the time and peak memory.
//!
//! ```text
//! cargo run --release -p rolehop-audit --example synth_org -- 1000 20 [--findings]
//! cargo run --release -p rolehop-audit --example synth_org -- 1000 20 --write DIR
//! ```
//! The second form only writes the exports, one file per account (`bench/audit-scale.sh`
//! audits them with the `rolehop` binary and with cloudsplaining).
//! Peak memory is the process's high-water mark (`VmHWM` in /proc/self/status).

use std::time::Instant;

use rolehop_audit::{Estate, audit, input};
use serde_json::{Value, json};

const BROKER: &str = "100000000000";
const SECURITY: &str = "100000000001";
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const CHAIN: [&str; 3] = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"];

fn account(i: usize) -> String {
    format!("{:012}", 200_000_000_000u64 + i as u64)
}

fn env_of(i: usize) -> &'static str {
    ENVS[i % ENVS.len()]
}

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn role(acct: &str, name: &str, trust: Value, inline: Value, tags: Value) -> Value {
    json!({
        "Path": "/", "RoleName": name, "RoleId": format!("AROA{acct}{}", name.len()),
        "Arn": format!("arn:aws:iam::{acct}:role/{name}"),
        "AssumeRolePolicyDocument": trust,
        "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": inline}],
        "AttachedManagedPolicies": [], "Tags": tags, "InstanceProfileList": [],
        "MaxSessionDuration": 3600,
    })
}

fn broker_export(n: usize) -> Value {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    for env in ENVS {
        let targets: Vec<String> = (0..n)
            .filter(|&i| env_of(i) == env)
            .map(|i| format!("arn:aws:iam::{}:role/rolehop-{env}-deploy", account(i)))
            .collect();
        let service = format!("arn:aws:iam::{BROKER}:role/rolehop-{env}-service");
        users.push(json!({
            "Path": "/", "UserName": format!("rolehop-{env}"), "UserId": format!("AIDA{env}"),
            "Arn": format!("arn:aws:iam::{BROKER}:user/rolehop-{env}"), "GroupList": [],
            "UserPolicyList": [{"PolicyName": "broker", "PolicyDocument":
                doc(json!([{"Effect": "Allow", "Action": CHAIN, "Resource": service}]))}],
            "AttachedManagedPolicies": [], "Tags": [],
        }));
        roles.push(role(
            BROKER,
            &format!("rolehop-{env}-service"),
            doc(json!([
                {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{BROKER}:user/rolehop-{env}")}, "Action": CHAIN},
                {"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{BROKER}:oidc-provider/gitlab.example.com")},
                 "Action": "sts:AssumeRoleWithWebIdentity",
                 "Condition": {"StringEquals": {"gitlab.example.com:aud": "https://aws.example.com"},
                               "StringLike": {"gitlab.example.com:sub": format!("project_path:acme/*:ref_type:branch:ref:{}", if env == "prod" { "main" } else { "*" })}}}
            ])),
            doc(json!([{"Effect": "Allow", "Action": CHAIN, "Resource": targets}])),
            json!([]),
        ));
    }
    json!({"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": roles, "Policies": []})
}

fn security_export() -> Value {
    json!({"UserDetailList": [{
        "Path": "/", "UserName": "auditor", "UserId": "AIDAAUDITOR", "GroupList": [],
        "Arn": format!("arn:aws:iam::{SECURITY}:user/auditor"),
        "UserPolicyList": [{"PolicyName": "audit", "PolicyDocument":
            doc(json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/security-audit"}]))}],
        "AttachedManagedPolicies": [], "Tags": []}],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": []})
}

/// One target account: the deployment role, a security-audit role, an ops role that may
/// assume the account's roles, and lambda/ECS service roles as noise.
fn target_export(i: usize, m: usize) -> Value {
    let acct = account(i);
    let env = env_of(i);
    let mut roles = vec![role(
        &acct,
        &format!("rolehop-{env}-deploy"),
        doc(json!([{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{BROKER}:role/rolehop-{env}-service")},
            "Action": CHAIN, "Condition": {"Null": {"sts:SourceIdentity": "false"}}}])),
        doc(json!([{"Effect": "Allow", "Action": ["s3:*", "cloudformation:*"], "Resource": "*"}])),
        json!([{"Key": "environment", "Value": env}]),
    )];
    let mut k = 1;
    if m > 1 {
        roles.push(role(
            &acct,
            "security-audit",
            doc(json!([{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{SECURITY}:root")}, "Action": "sts:AssumeRole"}])),
            doc(json!([{"Effect": "Allow", "Action": ["iam:Get*", "iam:List*", "s3:GetBucketPolicy"], "Resource": "*"}])),
            json!([]),
        ));
        k += 1;
    }
    if m > 2 {
        roles.push(role(
            &acct,
            "ops",
            doc(json!([{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{acct}:root")}, "Action": "sts:AssumeRole"}])),
            doc(json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{acct}:role/app-*")},
                       {"Effect": "Allow", "Action": ["ec2:Describe*", "logs:*"], "Resource": "*"}])),
            json!([]),
        ));
        k += 1;
    }
    while k < m {
        let (svc, actions) = if k % 2 == 0 {
            (
                "lambda.amazonaws.com",
                json!([
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents"
                ]),
            )
        } else {
            (
                "ecs-tasks.amazonaws.com",
                json!(["s3:GetObject", "sqs:ReceiveMessage", "sqs:DeleteMessage"]),
            )
        };
        let trust = if k % 5 == 0 {
            // Roles the ops role may assume.
            json!([{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{acct}:root")}, "Action": "sts:AssumeRole"}])
        } else {
            json!([{"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}])
        };
        roles.push(role(
            &acct,
            &format!("app-{env}-{k}"),
            doc(trust),
            doc(json!([{"Effect": "Allow", "Action": actions, "Resource": format!("arn:aws:*:*:{acct}:*")}])),
            json!([]),
        ));
        k += 1;
    }
    json!({"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": roles, "Policies": []})
}

/// CPU time this thread has run, in ms (the machine may be shared: wall time overstates).
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns / 1e6)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let show = std::env::args().any(|a| a == "--findings");
    let all: Vec<String> = std::env::args().skip(1).collect();
    // `--write DIR`: write the exports there (one file per account, as `aws iam
    // get-account-authorization-details` gives them) for `rolehop audit` and other tools.
    let write = all
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| all.get(i + 1))
        .cloned();
    let args: Vec<usize> = all
        .iter()
        .filter(|a| {
            !matches!(a.as_str(), "--findings" | "--write" | "--read")
                && Some(*a) != write.as_ref()
                && Some(*a)
                    != all
                        .iter()
                        .position(|x| x == "--read")
                        .and_then(|i| all.get(i + 1))
        })
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let n = args.first().copied().unwrap_or(100);
    let m = args.get(1).copied().unwrap_or(20);
    if let Some(dir) = write.filter(|_| !all.iter().any(|a| a == "--read")) {
        std::fs::create_dir_all(&dir)?;
        let put = |name: &str, v: &Value| -> std::io::Result<()> {
            std::fs::write(format!("{dir}/{name}.json"), v.to_string())
        };
        put(&format!("acct-{BROKER}"), &broker_export(n))?;
        put(&format!("acct-{SECURITY}"), &security_export())?;
        for i in 0..n {
            put(&format!("acct-{}", account(i)), &target_export(i, m))?;
        }
        println!("wrote {} exports to {dir}", n + 2);
        return Ok(());
    }

    // `--read DIR` (after N M): audit the exports written by `--write`, from disk.
    let read = all
        .iter()
        .position(|a| a == "--read")
        .and_then(|i| all.get(i + 1))
        .cloned();
    if let Some(dir) = read {
        let t0 = Instant::now();
        let mut estate = Estate::default();
        let mut files: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        files.sort_by_key(std::fs::DirEntry::path);
        for f in files {
            let text = std::fs::read_to_string(f.path())?;
            input::gaad::add_export(&mut estate, &f.path().display().to_string(), &text)?;
        }
        let report = audit(&estate, 0);
        // As `rolehop audit --format json` writes it.
        let out = serde_json::to_string_pretty(&rolehop_audit::output::json_report(&report, None))?;
        println!(
            "read {dir}: principals={} edges={} findings={} report={:.1}MiB wall={:.0}ms peak_rss={:.1}MiB",
            estate.principals.len(),
            report.graph.edges.len(),
            report.findings.len(),
            out.len() as f64 / 1048576.0,
            t0.elapsed().as_secs_f64() * 1e3,
            peak_rss_kib() as f64 / 1024.0
        );
        return Ok(());
    }
    // Exports as text, as the CLI would read them.
    let mut texts = vec![
        serde_json::to_string(&broker_export(n))?,
        serde_json::to_string(&security_export())?,
    ];
    for i in 0..n {
        texts.push(serde_json::to_string(&target_export(i, m))?);
    }
    let bytes: usize = texts.iter().map(String::len).sum();

    let c0 = cpu_ms();
    let t0 = Instant::now();
    let mut estate = Estate::default();
    for (i, t) in texts.iter().enumerate() {
        input::gaad::add_export(&mut estate, &format!("export-{i}.json"), t)?;
    }
    drop(texts);
    let load = t0.elapsed();
    let c1 = cpu_ms();
    let t1 = Instant::now();
    let report = audit(&estate, 0);
    let run = t1.elapsed();
    let c2 = cpu_ms();
    let reach_prod = report
        .blast_radius
        .iter()
        .find(|b| b.principal.ends_with(":user/rolehop-prod"))
        .map_or(0, |b| b.reaches.len());
    println!(
        "N={n} M={m} principals={} edges={} findings={} export={:.1}MiB load={:.0}ms audit={:.0}ms total={:.0}ms cpu_load={:.0}ms cpu_audit={:.0}ms peak_rss={:.1}MiB prod_user_reaches={reach_prod}",
        estate.principals.len(),
        report.graph.edges.len(),
        report.findings.len(),
        bytes as f64 / 1048576.0,
        load.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        (load + run).as_secs_f64() * 1e3,
        c1 - c0,
        c2 - c1,
        peak_rss_kib() as f64 / 1024.0,
    );
    if show {
        for f in &report.findings {
            println!(
                "{} {} {} {}",
                f.severity.as_str(),
                f.id,
                f.resource,
                f.title
            );
        }
    }
    Ok(())
}
