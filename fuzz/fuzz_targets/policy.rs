//! Fuzzes the IAM policy parser, then evaluates a fixed AssumeRole request against what
//! parsed (as identity, trust and boundary policy), so the matcher and conditions run on
//! arbitrary documents. Case files go through `cases` and are decided as well.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolehop_policy::{Context, EvalInput, Policy, Principal, Request, evaluate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The same bytes may also be a conformance case file (`rolehop simulate`).
    if let Ok(cases) = rolehop_policy::cases::parse_cases(text) {
        for case in cases.iter().take(16) {
            let _ = case.evaluate();
        }
    }
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    let mut ctx = Context::default();
    ctx.insert("aws:SourceIdentity", "alice@1001");
    ctx.insert("aws:PrincipalTag/env", "prod");
    ctx.insert("aws:MultiFactorAuthPresent", "true");
    let request = Request::new(
        Principal::arn("arn:aws:sts::111111111111:assumed-role/service/job-5005"),
        "sts:AssumeRole",
        "arn:aws:iam::222222222222:role/deploy",
    )
    .with_context(ctx);
    let input = EvalInput {
        identity: &[&policy],
        resource: Some(&policy),
        boundaries: &[&policy],
        ..EvalInput::default()
    };
    let eval = evaluate(&request, &input);
    let _ = eval.decision.as_str();
});
