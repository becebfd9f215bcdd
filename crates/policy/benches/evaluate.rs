//! `cargo bench -p rolehop-policy`: ns per `evaluate()` for a typical chained AssumeRole into a
//! deployment role and for a condition-heavy request, plus building and querying a
//! `TrustIndex` over 20,000 roles. A plain harness (median of batches) keeps dependencies out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use rolehop_policy::{
    Context, Decision, EvalInput, Policy, Principal, Request, TrustIndex, evaluate,
};

/// Median ns/op over batches of `f`.
fn bench(name: &str, mut f: impl FnMut()) {
    // Warm up and size a batch to roughly 20 ms.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() > Duration::from_millis(20) {
            break;
        }
        batch *= 2;
    }
    let mut samples: Vec<f64> = (0..25)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:<48} {:>10.0} ns/op  (min {:.0}, max {:.0}, {batch} ops/batch)",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
}

fn policy(s: &str) -> Policy {
    Policy::parse(s).unwrap()
}

fn main() {
    // A service-role session assuming its environment's deployment role in another account.
    let trust = policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"ServiceRole","Effect":"Allow",
         "Principal":{"AWS":"arn:aws:iam::111111111111:role/rolehop/service-dev"},
         "Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],
         "Condition":{"Null":{"sts:SourceIdentity":"false"},
                      "StringLike":{"sts:SourceIdentity":"gitlab-*"}}},
        {"Sid":"NoOthers","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111111111111:role/rolehop/service-dev"},
         "Action":"sts:AssumeRole"}]}"#,
    );
    let identity = policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"AssumeDeploy","Effect":"Allow","Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],
         "Resource":["arn:aws:iam::222222222222:role/rolehop/deploy-dev","arn:aws:iam::333333333333:role/rolehop/deploy-dev"]}]}"#,
    );
    let scp = policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    );
    let scps = vec![vec![&scp], vec![&scp]];
    let request = Request::new(
        Principal::arn("arn:aws:sts::111111111111:assumed-role/service-dev/gitlab-42"),
        "sts:AssumeRole",
        "arn:aws:iam::222222222222:role/rolehop/deploy-dev",
    )
    .with_context(Context::new().with("sts:SourceIdentity", "gitlab-4711"));
    let input = EvalInput {
        identity: &[&identity],
        resource: Some(&trust),
        scps: &scps,
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&request, &input).decision, Decision::Allowed);
    bench("evaluate: cross-account AssumeRole (trust+id+SCPs)", || {
        black_box(evaluate(black_box(&request), black_box(&input)));
    });

    // Many statements, every operator family, policy variables and multi-valued keys.
    let heavy = policy(
        r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Net","Effect":"Deny","Action":"*","Resource":"*",
         "Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","172.16.0.0/12","192.168.0.0/16","2001:db8::/32"]},
                      "Bool":{"aws:ViaAWSService":"false"}}},
        {"Sid":"Time","Effect":"Deny","Action":"*","Resource":"*",
         "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}},
        {"Sid":"Mfa","Effect":"Deny","Action":"s3:Delete*","Resource":"*",
         "Condition":{"NumericGreaterThanIfExists":{"aws:MultiFactorAuthAge":"3600"}}},
        {"Sid":"Tags","Effect":"Deny","Action":"s3:*","Resource":"*",
         "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["Owner","CostCenter","Secret"]}}},
        {"Sid":"Home","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],
         "Resource":"arn:aws:s3:::corp-data/home/${aws:username}/*",
         "Condition":{"StringEquals":{"aws:PrincipalTag/team":"${aws:ResourceTag/team}","aws:RequestedRegion":["eu-west-1","eu-central-1"]},
                      "StringLike":{"s3:prefix":["home/${aws:username}/*","shared/*"]},
                      "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111111111111:user/*"},
                      "ForAllValues:StringLike":{"aws:TagKeys":["app-*","env"]},
                      "IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
                      "DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},
                      "Null":{"aws:PrincipalTag/team":"false"}}}]}"#,
    );
    let heavy_request = Request::new(
        Principal::arn("arn:aws:iam::111111111111:user/alice"),
        "s3:PutObject",
        "arn:aws:s3:::corp-data/home/alice/report.csv",
    )
    .with_context(
        Context::new()
            .with("aws:SourceIp", "10.20.30.40")
            .with("aws:ViaAWSService", "false")
            .with("aws:CurrentTime", "2026-11-26T00:00:00Z")
            .with("aws:username", "alice")
            .with("aws:PrincipalTag/team", "data")
            .with("aws:ResourceTag/team", "data")
            .with("aws:RequestedRegion", "eu-west-1")
            .with("s3:prefix", "home/alice/2026")
            .with("aws:PrincipalArn", "arn:aws:iam::111111111111:user/alice")
            .with_values("aws:TagKeys", ["app-name", "env"]),
    );
    let heavy_input = EvalInput {
        identity: &[&heavy],
        ..EvalInput::default()
    };
    assert_eq!(
        evaluate(&heavy_request, &heavy_input).decision,
        Decision::Allowed
    );
    bench("evaluate: condition-heavy (5 stmts, 14 conditions)", || {
        black_box(evaluate(black_box(&heavy_request), black_box(&heavy_input)));
    });

    // Calibration: the cheapest possible decision on this machine.
    let all = policy(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
    let simple = Request::new(
        Principal::arn("arn:aws:iam::111111111111:user/u"),
        "s3:GetObject",
        "arn:aws:s3:::b/k",
    );
    let simple_input = EvalInput {
        identity: &[&all],
        ..EvalInput::default()
    };
    bench("evaluate: one Allow * statement (baseline)", || {
        black_box(evaluate(black_box(&simple), black_box(&simple_input)));
    });

    bench("Policy::parse: trust policy", || {
        black_box(Policy::parse(black_box(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/x"},"Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:SourceIdentity":"gitlab-*"}}}]}"#,
        )))
        .ok();
    });

    // An auditor's estate: 20,000 roles, each trusting one of 200 service roles, an account
    // root, a service or an OIDC provider.
    let docs: Vec<(String, Policy)> = (0..20_000)
        .map(|i| {
            let principal = match i % 4 {
                0 => format!(r#"{{"AWS":"arn:aws:iam::111111111111:role/service-{}"}}"#, i % 200),
                1 => format!(r#"{{"AWS":"arn:aws:iam::{:012}:root"}}"#, 100_000 + i % 500),
                2 => r#"{"Service":"lambda.amazonaws.com"}"#.to_string(),
                _ => format!(
                    r#"{{"Federated":"arn:aws:iam::{:012}:oidc-provider/gitlab.com"}}"#,
                    100_000 + i % 500
                ),
            };
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#
            );
            (
                format!("arn:aws:iam::{:012}:role/r{i}", 100_000 + i % 500),
                policy(&doc),
            )
        })
        .collect();
    let t = Instant::now();
    let index = TrustIndex::build(docs.iter().map(|(a, p)| (a.as_str(), p)));
    let build = t.elapsed();
    let session = Principal::arn("arn:aws:sts::111111111111:assumed-role/service-8/job");
    let t = Instant::now();
    let mut total = 0usize;
    for i in 0..200 {
        let p = Principal::arn(format!(
            "arn:aws:sts::111111111111:assumed-role/service-{i}/job"
        ));
        total += index.candidates(&p).count();
    }
    let queries = t.elapsed();
    println!(
        "TrustIndex::build over 20,000 roles                {:>10.2} ms",
        build.as_secs_f64() * 1e3
    );
    println!(
        "TrustIndex::candidates, 200 principals ({total} hits)   {:>10.2} ms total",
        queries.as_secs_f64() * 1e3
    );
    // Confirming every candidate with evaluate(): the auditor's full pass.
    let by_arn: std::collections::HashMap<&str, &Policy> =
        docs.iter().map(|(a, p)| (a.as_str(), p)).collect();
    let t = Instant::now();
    let mut allowed = 0;
    for role in index.candidates(&session) {
        let req = Request::new(session.clone(), "sts:AssumeRole", role);
        let input = EvalInput {
            identity: &[&scp],
            resource: by_arn.get(role).copied(),
            ..EvalInput::default()
        };
        if evaluate(&req, &input).decision.is_allowed() {
            allowed += 1;
        }
    }
    println!(
        "candidates + evaluate for one session ({allowed} allowed)   {:>10.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
