//! rolehop's pure renderer: from a validated topology to the IAM documents (`iam`), the
//! CloudFormation templates of the broker and target accounts and an include-able GitLab
//! pipeline. No I/O: callers write the returned files.

pub mod iam;

#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::PathBuf;

    use rolehop_core::Topology;

    /// One of the repository's example topologies, parsed with its policy files.
    pub fn example(name: &str) -> Topology {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
        let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
        Topology::parse(&format!("examples/{name}/rolehop.toml"), &src, &mut read).unwrap()
    }
}
