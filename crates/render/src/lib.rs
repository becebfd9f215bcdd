//! rolehop's pure renderer: from a validated topology to the IAM documents (`iam`), the
//! CloudFormation templates of the broker and target accounts and an include-able GitLab
//! pipeline. No I/O: callers write the returned files.
//!
//! Floors CI enforces here (warnings are denied): every public item is documented
//! (`missing_docs`), and nothing is `pub` that the crate does not export (`unreachable_pub`),
//! so the public surface is exactly what the CLI and the auditor are meant to use.

#![warn(missing_docs, unreachable_pub)]

pub mod cfn;
pub mod gate;
mod gate_cfn;
pub mod gitlab;
pub mod iam;
mod yaml;

use rolehop_core::Topology;

/// The rendered files, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// (file name relative to the output directory, content)
    pub files: Vec<(String, String)>,
}

impl Rendered {
    /// The content of the file called `name`.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }
}

/// The broker template's file name.
pub const BROKER_FILE: &str = "broker.yaml";
/// The pipeline's file name.
pub const PIPELINE_FILE: &str = "gitlab-ci.yml";

/// The target template's file name for an environment.
pub fn target_file(env: &str) -> String {
    format!("target-{env}.yaml")
}

/// The job file's name for an environment (`jobs/<env>.toml`, see `rolehop_core::job_file`).
pub use rolehop_core::job_file::job_file_name;

/// Renders every file of a topology: `broker.yaml`, `target-<env>.yaml` per environment,
/// in gate mode `gate-<env>.toml` per environment (the config of `rolehop gate serve`; the
/// Lambda function carries the same text), `gitlab-ci.yml` and `jobs/<env>.toml` per
/// environment (what a deploy job reads). The same topology always gives the same bytes.
pub fn render(topo: &Topology) -> Rendered {
    let mut files = vec![(BROKER_FILE.to_owned(), cfn::broker(topo))];
    for env in &topo.environments {
        files.push((target_file(&env.name), cfn::target(topo, env)));
    }
    for env in &topo.environments {
        if let Some(config) = gate::gate_config(topo, env) {
            files.push((gate::gate_config_file(&env.name), config));
        }
    }
    files.push((PIPELINE_FILE.to_owned(), gitlab::pipeline(topo)));
    for env in &topo.environments {
        files.push((
            job_file_name(&env.name),
            rolehop_core::job_file::render(topo, env),
        ));
    }
    Rendered { files }
}

#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::PathBuf;

    use rolehop_core::Topology;

    /// One of the repository's example topologies, parsed with its policy files.
    pub(crate) fn example(name: &str) -> Topology {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
        let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
        Topology::parse(&format!("examples/{name}/rolehop.toml"), &src, &mut read).unwrap()
    }
}
