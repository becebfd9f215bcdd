//! What the gate benchmarks share: one `prod` gate config, so the load test and the chain
//! comparison measure the same rules.

use std::path::{Path, PathBuf};

/// The audience the benchmarks' tokens carry.
pub const AUD: &str = "https://gate.rolehop.test";

/// Writes `dir/gate.toml`: protected-environment rules for `main` of project 42 deploying to
/// `production`, merge request pipelines denied, assuming `service_role_arn` in eu-west-1.
pub fn write_gate_config(dir: &Path, issuer_url: &str, service_role_arn: &str) -> PathBuf {
    let config = dir.join("gate.toml");
    std::fs::write(
        &config,
        format!(
            r#"issuer = "{issuer_url}"
audience = "{AUD}"
region = "eu-west-1"
[environments.prod]
service_role_arn = "{service_role_arn}"
[environments.prod.rules]
project_ids = ["42"]
branches = ["main"]
environments = ["production"]
environment_protected = true
pipeline_sources = {{ deny = ["merge_request_event"] }}
"#
        ),
    )
    .unwrap();
    config
}
