//! The credential-process cache and the per-account profiles in a GitLab pipeline, run by
//! gitlab-ci-local (shell executor): one deploy job calls the aws CLI five times through a
//! `credential_process` profile, then deploys to two accounts with `rolehop exec --profile`.
//! STS sits behind a counting proxy, so the test sees the chain ran once for the five calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::{Moto, node_bin_dir, seed_chain, venv_tool};

mod common;

use common::*;

const PIPELINE: &str = r#"deploy:
  environment: production
  script:
    - printf '[profile deploy]\nregion = eu-west-1\ncredential_process = %s credential-process --config %s/rolehop.toml --env prod --account prod-eu\n' "$ROLEHOP_BIN" "$PWD" > aws-config
    - for i in 1 2 3 4 5; do AWS_CONFIG_FILE=$PWD/aws-config aws sts get-caller-identity --profile deploy --query Arn --output text; done
    - '"$ROLEHOP_BIN" exec --config rolehop.toml --env prod --account prod-eu --profile shared-net -- sh -c "aws sts get-caller-identity --query Arn --output text && AWS_PROFILE=shared-net aws sts get-caller-identity --query Arn --output text"'
"#;

#[test]
fn a_pipeline_job_caches_its_chain_and_deploys_to_two_accounts() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    second_account_deploy_role(&moto, &seed);
    let proxy = counting_proxy(&moto);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("shop");
    std::fs::create_dir(&repo).unwrap();
    let topo = seeded_topology(&repo, false);
    let text = std::fs::read_to_string(&topo).unwrap() + "shared-net = \"333333333333\"\n";
    std::fs::write(&topo, text).unwrap();
    std::fs::write(repo.join(".gitlab-ci.yml"), PIPELINE).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::write(
        repo.join(".gitlab-ci-local-variables.yml"),
        format!(
            "ROLEHOP_BROKER_KEY: \"{}:{}\"\n",
            seed.access_key_id, seed.secret_access_key
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}:{}",
        node_bin_dir().display(),
        venv_tool("aws").parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    common::commit_shop_repo(&repo, "shop");
    let bin = assert_cmd::cargo::cargo_bin("rolehop");
    let out = common::gitlab_ci_local(&repo, &path, true, &proxy.url())
        .args([
            "--variable",
            &format!("ROLEHOP_CACHE_DIR={}", cache.display()),
        ])
        .args(["--variable", &format!("ROLEHOP_BIN={}", bin.display())])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS  deploy"), "{text}");
    let prod = text
        .matches("arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-")
        .count();
    assert_eq!(
        prod, 6,
        "five cached calls and the exec's default account: {text}"
    );
    assert_eq!(
        text.matches("arn:aws:sts::333333333333:assumed-role/rolehop-test-deploy/gl-")
            .count(),
        1,
        "AWS_PROFILE=shared-net reached the second account: {text}"
    );
    // One chain for the five aws CLI calls (2), one per account for exec (4).
    assert_eq!(assume_calls(&proxy), 6, "{text}");
    assert!(!text.contains(&seed.secret_access_key));
}
