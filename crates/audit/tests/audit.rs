#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The auditor as a user meets it: example topologies come out clean, planted defects in
//! hand-made exports are each found under the right id, and a real-world export is audited.

use rolehop_audit::{Estate, Report, Severity, audit, input};

use rolehop_testkit::{topology, topology_src, workspace_root as root};

/// 2026-11-26T00:00:00Z
const NOW: i64 = 1_795_651_200;

fn fixtures() -> Estate {
    let dir = root().join("crates/audit/tests/fixtures");
    let mut e = Estate::default();
    for f in [
        "broker-111111111111.json",
        "prod-222222222222.json",
        "nonprod-333333333333.json",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        input::gaad::add_export(&mut e, f, &text).unwrap();
    }
    let csv = std::fs::read_to_string(dir.join("credential-report.csv")).unwrap();
    input::add_credential_report(&mut e, "credential-report.csv", &csv).unwrap();
    e
}

fn has(r: &Report, id: &str, resource: &str) -> bool {
    r.findings
        .iter()
        .any(|f| f.id == id && f.resource == resource)
}

#[test]
fn example_topologies_have_no_high_findings_and_stay_in_their_environment() {
    for ex in [
        "examples/access-keys/rolehop.toml",
        "examples/oidc/rolehop.toml",
    ] {
        let topo = topology(ex);
        let report = audit(&input::topology::estate_of(&topo), NOW);
        let serious: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .collect();
        assert!(serious.is_empty(), "{ex}: {serious:#?}");
        assert!(
            !report.blast_radius.is_empty(),
            "{ex}: no credential holder"
        );
        for b in &report.blast_radius {
            // Which environment holds this credential: the one whose service role it reaches.
            let own: Vec<_> = topo
                .environments
                .iter()
                .filter(|e| b.reaches.contains(&topo.service_role_arn(e).to_string()))
                .collect();
            assert_eq!(
                own.len(),
                1,
                "{ex}: {} reaches {:?}",
                b.principal,
                b.reaches
            );
            let env = own[0];
            let mut expected: Vec<String> = env
                .accounts
                .iter()
                .map(|a| topo.deployment_role_arn(env, a).to_string())
                .chain([topo.service_role_arn(env).to_string()])
                .collect();
            expected.sort();
            assert_eq!(b.reaches, expected, "{ex}: {}", b.principal);
            assert!(!b.admin);
        }
    }
}

#[test]
fn oidc_example_subjects_are_the_topologys_patterns() {
    let topo = topology("examples/oidc/rolehop.toml");
    let report = audit(&input::topology::estate_of(&topo), NOW);
    let prod = topo.environment("prod").unwrap();
    for sub in prod.gitlab.sub_patterns() {
        let id = format!("oidc:gitlab.example.com:{sub}");
        let b = report
            .blast_radius
            .iter()
            .find(|b| b.principal == id)
            .unwrap_or_else(|| panic!("no blast radius for {id}"));
        assert!(
            b.reaches
                .contains(&"arn:aws:iam::222222222222:role/rolehop-prod-deploy".to_owned())
        );
    }
}

#[test]
fn admin_deployment_role_without_boundary_in_a_topology_is_found() {
    let src = std::fs::read_to_string(root().join("examples/access-keys/rolehop.toml"))
        .unwrap()
        .replace(
            "managed_policies = [\"arn:aws:iam::aws:policy/AWSCloudFormationFullAccess\"]\ninline_policies = [\"policies/deploy-app.json\"]\nboundary = \"arn:aws:iam::aws:policy/PowerUserAccess\"\n\n[environments.nonprod]",
            "managed_policies = [\"arn:aws:iam::aws:policy/AdministratorAccess\"]\n\n[environments.nonprod]",
        );
    let topo = topology_src("examples/access-keys/rolehop.toml", &src);
    let report = audit(&input::topology::estate_of(&topo), NOW);
    assert!(has(
        &report,
        "RH009",
        "arn:aws:iam::222222222222:role/rolehop-prod-deploy"
    ));
    let prod_user = report
        .blast_radius
        .iter()
        .find(|b| b.principal.ends_with(":user/rolehop-prod"))
        .unwrap();
    assert!(prod_user.admin);

    // Dashboards and merge request widgets point at the account's line in rolehop.toml.
    let line = src
        .lines()
        .position(|l| l.contains("\"222222222222\""))
        .unwrap()
        + 1;
    let sarif = rolehop_audit::output::sarif(&report);
    let result = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "RH009")
        .unwrap();
    let physical = &result["locations"][0]["physicalLocation"];
    assert_eq!(physical["region"]["startLine"], line, "{result}");
    assert_eq!(
        physical["artifactLocation"]["uri"],
        "examples/access-keys/rolehop.toml"
    );
    let cq = rolehop_audit::output::codequality(&report);
    let issue = cq
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["check_name"] == "RH009")
        .unwrap();
    assert_eq!(issue["location"]["lines"]["begin"], line, "{issue}");
}

#[test]
fn planted_defects_are_each_found_with_their_id() {
    let report = audit(&fixtures(), NOW);
    let b = "arn:aws:iam::111111111111:";
    let expected = [
        ("RH001", format!("{b}user/rolehop-prod")),
        (
            "RH002",
            "arn:aws:iam::222222222222:role/rolehop-prod-deploy".to_owned(),
        ),
        (
            "RH003",
            "arn:aws:iam::222222222222:role/rolehop-prod-deploy".to_owned(),
        ),
        ("RH004", format!("{b}role/gitlab-noaud")),
        ("RH005", format!("{b}role/gitlab-equals")),
        ("RH006", format!("{b}role/gitlab-anyproject")),
        ("RH006", format!("{b}role/shop-prod-oidc")),
        (
            "RH007",
            "arn:aws:iam::222222222222:role/rolehop-prod-deploy".to_owned(),
        ),
        (
            "RH008",
            "arn:aws:iam::333333333333:role/rolehop-nonprod-deploy".to_owned(),
        ),
        (
            "RH009",
            "arn:aws:iam::333333333333:role/rolehop-nonprod-deploy".to_owned(),
        ),
        ("RH010", format!("{b}user/rolehop-prod")),
        ("RH011", format!("{b}user/rolehop-prod")),
        ("RH012", format!("{b}role/open-to-world")),
        (
            "RH090",
            "arn:aws:iam::333333333333:role/broken-policy".to_owned(),
        ),
    ];
    for (id, res) in &expected {
        assert!(
            has(&report, id, res),
            "{id} on {res} not found in {:#?}",
            report.findings
        );
    }
    // With one export per account, each finding points at its account's export.
    let sarif = rolehop_audit::output::sarif(&report);
    let uri_of = |resource: &str| {
        sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == resource)
            .map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone())
    };
    assert_eq!(
        uri_of("arn:aws:iam::333333333333:role/broken-policy").unwrap(),
        "nonprod-333333333333.json"
    );
    assert_eq!(
        uri_of(&format!("{b}user/rolehop-prod")).unwrap(),
        "broker-111111111111.json"
    );
    // Nothing is found about what was not planted.
    assert!(!has(&report, "RH001", &format!("{b}user/rolehop-nonprod")));
    assert!(!has(&report, "RH010", &format!("{b}user/rolehop-nonprod")));
    assert!(!has(
        &report,
        "RH008",
        "arn:aws:iam::222222222222:role/rolehop-prod-deploy"
    ));
}

#[test]
fn a_nonprod_identity_reaching_a_prod_role_is_critical_and_shows_the_path() {
    let report = audit(&fixtures(), NOW);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "RH002" && f.title.contains("user/rolehop-nonprod"))
        .unwrap();
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.detail.starts_with(
        "path: arn:aws:iam::111111111111:user/rolehop-nonprod -> arn:aws:iam::111111111111:role/rolehop-nonprod-service -> arn:aws:iam::222222222222:role/rolehop-prod-deploy ["
        ),
        "{}",
        f.detail
    );
    // The finding says what was inferred about the role it reached, and from what.
    assert!(
        f.detail
            .contains("deployment role: assumed from account `111111111111`")
            && f.detail
                .contains("environment `prod` from a token of its name"),
        "{}",
        f.detail
    );
    let nonprod = report
        .blast_radius
        .iter()
        .find(|b| b.principal.ends_with("user/rolehop-nonprod"))
        .unwrap();
    assert!(
        nonprod
            .reaches
            .contains(&"arn:aws:iam::222222222222:role/rolehop-prod-deploy".to_owned())
    );
}

#[test]
fn key_ages_follow_the_injected_clock() {
    // 60 days after the prod user's first key was rotated it is not yet old.
    let report = audit(&fixtures(), 1_767_312_000 + 60 * 86_400);
    assert!(!has(
        &report,
        "RH010",
        "arn:aws:iam::111111111111:user/rolehop-prod"
    ));
}

#[test]
fn edges_keep_their_conditions() {
    let report = audit(&fixtures(), NOW);
    let g = &report.graph;
    let to = g
        .find("arn:aws:iam::222222222222:role/rolehop-prod-deploy")
        .unwrap();
    let from = g
        .find("arn:aws:iam::111111111111:role/rolehop-prod-service")
        .unwrap();
    let e = g
        .edges
        .iter()
        .find(|e| e.from == from && e.to == to)
        .unwrap();
    assert_eq!(
        e.conditions,
        vec!["Null sts:SourceIdentity = false".to_owned()]
    );
}

/// A project-written export in the shape `aws iam get-account-authorization-details` returns
/// for a workload account: an AWS managed policy and a customer managed policy with several
/// versions (the default is not the newest), URL-encoded documents next to plain JSON ones,
/// groups with a path, inline and managed policies, a user in a group under a permissions
/// boundary, an instance profile, and a role whose managed policy is not in the export.
fn workloads() -> Estate {
    let file = "workloads-555555555555.json";
    let text =
        std::fs::read_to_string(root().join("crates/audit/tests/fixtures").join(file)).unwrap();
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, file, &text).unwrap();
    e
}

const WL: &str = "arn:aws:iam::555555555555";

#[test]
fn real_world_export_is_audited() {
    let e = workloads();
    assert_eq!(e.principals.len(), 3 + 3);
    // Every document, URL-encoded or not, was read.
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    let report = audit(&e, NOW);
    // The admins group's AWS managed policy makes its member admin-equivalent.
    assert!(has(&report, "RH014", &format!("{WL}:user/ana")));
    // The developer is in a group whose policies are not admin, and under a boundary.
    assert!(!has(&report, "RH014", &format!("{WL}:user/ben")));
    // The release bot reaches the admin role through its URL-encoded trust policy.
    let bot = report
        .blast_radius
        .iter()
        .find(|b| b.principal == format!("{WL}:user/automation/release-bot"))
        .unwrap();
    assert!(bot.admin);
    // platform-ops (AdministratorAccess) may pass the web server's role to EC2 and start an
    // instance with it: the bot reaches that role too, through PassRole.
    assert_eq!(
        bot.reaches,
        vec![
            format!("{WL}:role/ops/platform-ops"),
            format!("{WL}:role/web-server")
        ]
    );
    // The web server's policy is its default version (v2, S3 read), not the broader v3.
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.resource == format!("{WL}:role/web-server")),
        "{:?}",
        report.findings
    );
    // Nothing at or above high: this is what `--fail-on high` lets through.
    assert!(
        report.findings.iter().all(|f| f.severity < Severity::High),
        "{:?}",
        report.findings
    );
    // Deterministic.
    let again = audit(&e, NOW);
    assert_eq!(report.findings, again.findings);
    assert_eq!(report.blast_radius, again.blast_radius);
}

#[test]
fn a_managed_policy_missing_from_the_export_is_reported_not_evaluated() {
    let report = audit(&workloads(), NOW);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "RH091")
        .expect("RH091 for the vendor role's unknown managed policy");
    assert_eq!(f.resource, format!("{WL}:role/vendor-readonly"));
    assert_eq!(f.severity, Severity::Low);
    assert!(
        f.detail.contains(&format!("{WL}:policy/vendor-extras")),
        "{}",
        f.detail
    );
    // A policy that is in the export (or known to rolehop) is evaluated, never reported.
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.id == "RH091" && f.detail.contains("web-read"))
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.id == "RH091" && f.detail.contains("ViewOnlyAccess"))
    );
}

#[test]
fn not_an_export_is_an_input_error() {
    let mut e = Estate::default();
    let err = input::gaad::add_export(&mut e, "x.json", "{\"Foo\": 1}").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("x.json: not an authorization-details export")
    );
    let err = input::gaad::add_export(&mut e, "y.json", "{\n  nope").unwrap_err();
    assert!(
        err.to_string().starts_with("y.json:2:3: invalid JSON"),
        "{err}"
    );
}

fn with_scps(scps: &str) -> Report {
    let mut e = fixtures();
    input::add_scps(&mut e, "scps.json", scps).unwrap();
    audit(&e, NOW)
}

const PROD_DEPLOY: &str = "arn:aws:iam::222222222222:role/rolehop-prod-deploy";

#[test]
fn scps_decide_edges_on_what_aws_knows_and_assume_the_rest() {
    let allow_all = r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    // Keyed on the caller's ARN, which AWS always knows: only prod roles may reach prod.
    let by_arn = format!(
        r#"[{{"orgIdentifier": "r-root", "policies": [{allow_all}]}},
            {{"orgIdentifier": "ou-broker", "accounts": ["111111111111"], "policies": [{allow_all},
              {{"Statement": [{{"Effect": "Deny", "Action": "sts:AssumeRole",
                "Resource": "arn:aws:iam::222222222222:role/*",
                "Condition": {{"StringNotLike": {{"aws:PrincipalArn": "arn:aws:iam::*:role/rolehop-prod-*"}}}}}}]}}]}}]"#
    );
    let report = with_scps(&by_arn);
    assert!(
        !has(&report, "RH002", PROD_DEPLOY),
        "{:#?}",
        report.findings
    );
    let g = &report.graph;
    let e = g
        .edges
        .iter()
        .find(|e| {
            g.nodes[e.from].id.ends_with("role/rolehop-prod-service")
                && g.nodes[e.to].id == PROD_DEPLOY
        })
        .unwrap();
    assert_eq!(
        e.conditions,
        vec!["Null sts:SourceIdentity = false".to_owned()]
    );

    // Keyed on something only the request knows: the edge may exist, and says when.
    let by_tag = format!(
        r#"[{{"orgIdentifier": "ou-broker", "accounts": ["111111111111"], "policies": [{allow_all},
              {{"Statement": [{{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
                "Condition": {{"StringNotEquals": {{"aws:RequestTag/team": "platform"}}}}}}]}}]}}]"#
    );
    let report = with_scps(&by_tag);
    assert!(has(&report, "RH002", PROD_DEPLOY));
    let g = &report.graph;
    let e = g
        .edges
        .iter()
        .find(|e| {
            g.nodes[e.from].id.ends_with("role/rolehop-nonprod-service")
                && g.nodes[e.to].id == PROD_DEPLOY
        })
        .unwrap();
    assert!(
        e.conditions
            .contains(&"unless StringNotEquals aws:RequestTag/team = platform".to_owned()),
        "{:?}",
        e.conditions
    );

    // Unconditional: the hop is gone, and the prod user's reach stops at its service role.
    let report = with_scps(&format!(
        r#"[{{"orgIdentifier": "ou-broker", "accounts": ["111111111111"], "policies": [{allow_all},
          {{"Statement": [{{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/rolehop-prod-deploy"}}]}}]}}]"#
    ));
    assert!(!has(&report, "RH002", PROD_DEPLOY));
    let prod = report
        .blast_radius
        .iter()
        .find(|b| b.principal.ends_with(":user/rolehop-prod"))
        .unwrap();
    assert_eq!(
        prod.reaches,
        vec!["arn:aws:iam::111111111111:role/rolehop-prod-service".to_owned()]
    );
}

#[test]
fn a_bad_scp_file_is_an_input_error() {
    let mut e = Estate::default();
    let err = input::add_scps(&mut e, "scps.json", r#"[{"policies": []}]"#).unwrap_err();
    assert_eq!(err.to_string(), "scps.json: [0].orgIdentifier is missing");
}

#[test]
fn a_credential_report_time_that_does_not_parse_is_an_input_error() {
    let mut e = Estate::default();
    let report = "user,arn,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date\n\
                  ci,arn:aws:iam::111111111111:user/ci,true,yesterday,N/A\n";
    let err = input::add_credential_report(&mut e, "report.csv", report).unwrap_err();
    assert_eq!(
        err.to_string(),
        "report.csv: row 2: `access_key_1_last_rotated` is `yesterday`, not a time like `2026-01-02T00:00:00+00:00`"
    );
}

#[test]
fn group_policies_and_default_versions_count() {
    // The user's rights come only through its group: an inline group policy and a managed
    // policy whose default version (v2) is harmless while an old version (v1) was not.
    let export = r#"{
      "UserDetailList": [{"UserName": "rolehop-dev", "UserId": "AIDADEV", "Arn": "arn:aws:iam::111111111111:user/rolehop-dev",
        "GroupList": ["ci-users"], "UserPolicyList": [], "AttachedManagedPolicies": [], "Tags": []}],
      "GroupDetailList": [{"GroupName": "ci-users", "Arn": "arn:aws:iam::111111111111:group/ci-users",
        "GroupPolicyList": [{"PolicyName": "extra", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}],
        "AttachedManagedPolicies": [{"PolicyName": "ci", "PolicyArn": "arn:aws:iam::111111111111:policy/ci"}]}],
      "RoleDetailList": [],
      "Policies": [{"PolicyName": "ci", "Arn": "arn:aws:iam::111111111111:policy/ci", "DefaultVersionId": "v2",
        "PolicyVersionList": [
          {"VersionId": "v1", "IsDefaultVersion": false, "Document": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22iam%3APutUserPolicy%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"},
          {"VersionId": "v2", "IsDefaultVersion": true, "Document": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sts%3AAssumeRole%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"}
        ]}]
    }"#;
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "groups.json", export).unwrap();
    let report = audit(&e, NOW);
    let f = report.findings.iter().find(|f| f.id == "RH001").unwrap();
    assert_eq!(f.resource, "arn:aws:iam::111111111111:user/rolehop-dev");
    assert_eq!(
        f.severity,
        Severity::High,
        "v1 (admin) is not the default version"
    );
    assert!(f.detail.contains("`s3:*`"), "{}", f.detail);
}

#[test]
fn a_topology_letting_any_branch_reach_prod_is_found() {
    let src = std::fs::read_to_string(root().join("examples/oidc/rolehop.toml"))
        .unwrap()
        .replacen("branches = [\"main\"]", "branches = [\"*\"]", 1)
        .replacen(
            "protected_ref_globs = [\"v*\"]",
            "protected_ref_globs = [\"v*\", \"*\"]",
            1,
        );
    let topo = topology_src("examples/oidc/rolehop.toml", &src);
    let report = audit(&input::topology::estate_of(&topo), NOW);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "RH006")
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(f.severity, Severity::High);
    assert_eq!(
        f.resource,
        "arn:aws:iam::111111111111:role/rolehop-prod-service"
    );
    // A service role's finding points at its environment's table.
    let header = src
        .lines()
        .position(|l| l.trim() == "[environments.prod]")
        .unwrap()
        + 1;
    assert_eq!(report.origin_of(&f.resource).1, header);
}

/// The edges and findings of a one-user, two-role export whose trust policies name their
/// principal as `principal` builds it (the user's ARN, then an outside account's root).
fn trusted_as(principal: impl Fn(&str) -> serde_json::Value) -> (Vec<String>, Vec<String>) {
    let role = |name: &str, who: &str| {
        serde_json::json!({
            "RoleName": name, "Arn": format!("arn:aws:iam::111111111111:role/{name}"),
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": principal(who), "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "x"}}}]},
            "RolePolicyList": [], "AttachedManagedPolicies": []})
    };
    let export = serde_json::json!({
        "UserDetailList": [{"UserName": "ci", "Arn": "arn:aws:iam::111111111111:user/ci",
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Statement": {
                "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}}]}],
        "RoleDetailList": [
            role("inside", "arn:aws:iam::111111111111:user/ci"),
            role("outside", "arn:aws:iam::999999999999:root"),
        ],
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "x.json", &export.to_string()).unwrap();
    let r = audit(&e, NOW);
    let g = &r.graph;
    let edges = g
        .edges
        .iter()
        .map(|e| {
            let (from, to) = (&g.nodes[e.from].id, &g.nodes[e.to].id);
            format!("{from} -> {to} {} {:?}", e.action, e.conditions)
        })
        .collect();
    let findings = r
        .findings
        .iter()
        .map(|f| format!("{} {}", f.id, f.title))
        .collect();
    (edges, findings)
}

#[test]
fn a_principal_written_as_a_bare_arn_a_string_or_a_list_is_the_same_principal() {
    let aws = trusted_as(|a| serde_json::json!({"AWS": a}));
    assert_eq!(
        aws.0,
        [
            "arn:aws:iam::111111111111:user/ci -> arn:aws:iam::111111111111:role/inside sts:AssumeRole [\"StringEquals sts:ExternalId = x\"]",
            "arn:aws:iam::999999999999:root -> arn:aws:iam::111111111111:role/outside sts:AssumeRole [\"StringEquals sts:ExternalId = x\"]",
        ]
    );
    assert_eq!(
        aws.1,
        ["RH013 role `outside` is trusted by account `999999999999`, outside the audited estate"]
    );
    assert_eq!(trusted_as(|a| serde_json::json!({"AWS": [a]})), aws);
    // Older documents name one principal as a bare string; IAM reads it as `AWS`.
    assert_eq!(trusted_as(|a| serde_json::json!(a)), aws);
    // Padding around a value is not part of the principal.
    assert_eq!(
        trusted_as(|a| serde_json::json!({"AWS": format!(" {a} ")})),
        aws
    );
}

/// Findings (id, severity) and graph edges (from -> to) of a one-role export whose OIDC
/// trust has `conditions`.
fn oidc_trust(conditions: serde_json::Value) -> (Vec<String>, Vec<String>) {
    let export = serde_json::json!({"RoleDetailList": [{
        "RoleName": "ci", "Arn": "arn:aws:iam::111111111111:role/ci",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/gitlab.example.com"},
            "Action": "sts:AssumeRoleWithWebIdentity", "Condition": conditions}]},
        "RolePolicyList": [], "AttachedManagedPolicies": []}]});
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "x.json", &export.to_string()).unwrap();
    let r = audit(&e, NOW);
    let g = &r.graph;
    let findings = r
        .findings
        .iter()
        .map(|f| format!("{} {:?}", f.id, f.severity))
        .collect();
    let edges = g
        .edges
        .iter()
        .map(|e| format!("{} -> {}", g.nodes[e.from].id, g.nodes[e.to].id))
        .collect();
    (findings, edges)
}

#[test]
fn oidc_condition_keys_and_operators_are_read_in_any_case() {
    let sub = "project_path:acme/*:ref_type:branch:ref:main";
    let written = oidc_trust(serde_json::json!({"StringEquals": {
        "gitlab.example.com:aud": "https://aws.example.com", "gitlab.example.com:sub": sub}}));
    assert_eq!(
        written,
        (
            vec!["RH005 Medium".to_owned()],
            vec![format!(
                "oidc:gitlab.example.com:{sub} -> arn:aws:iam::111111111111:role/ci"
            )]
        )
    );
    // IAM compares condition keys and operator names case-insensitively.
    let shouted = oidc_trust(serde_json::json!({"stringequals": {
        "GitLab.Example.com:AUD": "https://aws.example.com", "GITLAB.EXAMPLE.COM:Sub": sub}}));
    assert_eq!(shouted, written);
    // A negated or Null condition on `sub` names no admitted subject.
    let negated = oidc_trust(serde_json::json!({
        "StringEquals": {"gitlab.example.com:aud": "https://aws.example.com"},
        "stringnotlike": {"gitlab.example.com:sub": "project_path:evil/*"}}));
    assert!(
        negated.0.contains(&"RH006 Critical".to_owned()),
        "{negated:?}"
    );
}

#[test]
fn a_trust_policy_that_cannot_be_read_is_a_high_finding_not_silence() {
    // An operator rolehop does not know: the role's trust cannot be judged, so who may
    // assume it is unknown, and the audit says so loudly instead of guessing.
    let (findings, edges) = oidc_trust(serde_json::json!({
        "StringEqualsSomeday": {"gitlab.example.com:aud": "https://gitlab.example.com"}
    }));
    assert_eq!(findings, ["RH092 High"]);
    assert!(edges.is_empty(), "{edges:?}");
}

const PROD_SERVICE: &str = "arn:aws:iam::111111111111:role/rolehop-prod-service";

fn findings_of(r: &Report, id: &str) -> Vec<(Severity, String)> {
    r.findings
        .iter()
        .filter(|f| f.id == id)
        .map(|f| (f.severity, f.title.clone()))
        .collect()
}

#[test]
fn the_oidc_example_says_what_its_prod_trust_rests_on() {
    let topo = topology("examples/oidc/rolehop.toml");
    let report = audit(&input::topology::estate_of(&topo), NOW);
    // Not "No findings": prod trusts tags `v*`, which only GitLab's protection keeps from
    // developers; the acknowledgement makes it low, and the finding says what it rests on.
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "RH015")
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(
        (f.severity, f.resource.as_str()),
        (Severity::Low, PROD_SERVICE)
    );
    assert!(
        f.title
            .starts_with("GitLab must protect every tag matching `v*` in `acme/shop`"),
        "{}",
        f.title
    );
    // nonprod's globs are not findings; prod's exact branch is not either.
    assert_eq!(
        findings_of(&report, "RH015").len(),
        1,
        "{:#?}",
        report.findings
    );
    assert!(findings_of(&report, "RH016").is_empty());
    assert!(findings_of(&report, "RH017").is_empty());
}

#[test]
fn globs_a_production_tier_environment_does_not_acknowledge_are_high() {
    // `tier = "production"` without `protected`: validation lets the globs through, the audit
    // still counts the environment as production.
    let src = std::fs::read_to_string(root().join("examples/oidc/rolehop.toml"))
        .unwrap()
        .replacen("protected = true\n", "", 1)
        .replacen("protected_ref_globs = [\"v*\"]", "", 1)
        .replacen(
            "projects = [\"acme/shop\"]",
            "projects = [\"acme/shop\", \"acme/tools/*\"]",
            1,
        );
    let topo = topology_src("examples/oidc/rolehop.toml", &src);
    let report = audit(&input::topology::estate_of(&topo), NOW);
    let rh015 = findings_of(&report, "RH015");
    assert_eq!(
        rh015,
        [
            (Severity::High, "OIDC subject `project_path:acme/shop:ref_type:tag:ref:v*` of production role `rolehop-prod-service` admits every tag matching `v*`".to_owned()),
            (Severity::High, "OIDC subject `project_path:acme/tools/*:ref_type:tag:ref:v*` of production role `rolehop-prod-service` admits every tag matching `v*`".to_owned()),
        ]
    );
    assert_eq!(
        findings_of(&report, "RH016"),
        [(Severity::High, "OIDC subject pattern of production role `rolehop-prod-service` admits every project matching `acme/tools/*`".to_owned())]
    );
}

#[test]
fn an_accepted_project_glob_says_who_reaches_prod() {
    let src = std::fs::read_to_string(root().join("examples/oidc/rolehop.toml"))
        .unwrap()
        .replacen(
            "projects = [\"acme/shop\"]",
            "projects = [\"acme/shop-*\"]\naccept_project_globs = [\"acme/shop-*\"]",
            1,
        );
    let topo = topology_src("examples/oidc/rolehop.toml", &src);
    let report = audit(&input::topology::estate_of(&topo), NOW);
    assert_eq!(
        findings_of(&report, "RH016"),
        [(Severity::Low, "whoever can create a project matching `acme/shop-*` reaches production role `rolehop-prod-service`".to_owned())]
    );
    let detail = &report
        .findings
        .iter()
        .find(|f| f.id == "RH016")
        .unwrap()
        .detail;
    assert!(
        detail.contains("in any subgroup below qualifies"),
        "{detail}"
    );
}

/// A prod service role in an export whose trust is what rolehop rendered before branches and
/// tags were split (every ref paired with every ref type), plus a group glob.
fn old_render_export(role: &str) -> Estate {
    prod_trust_export(
        role,
        &[
            "project_path:acme/shop:ref_type:branch:ref:main",
            "project_path:acme/shop:ref_type:branch:ref:v*",
            "project_path:acme/shop:ref_type:tag:ref:main",
            "project_path:acme/shop:ref_type:tag:ref:v*",
            "project_path:acme/*:ref_type:branch:ref:main",
        ],
    )
}

/// An export with one role trusting GitLab ID tokens whose `sub` matches `subs`.
fn prod_trust_export(role: &str, subs: &[&str]) -> Estate {
    let export = serde_json::json!({
        "UserDetailList": [],
        "RoleDetailList": [{
            "RoleName": role, "Arn": format!("arn:aws:iam::111111111111:role/{role}"),
            // Exports carry URL-encoded documents; the parsed policy is what is judged.
            "AssumeRolePolicyDocument": serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/gitlab.example.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"gitlab.example.com:aud": "https://aws.example.com"},
                    "StringLike": {"gitlab.example.com:sub": subs}}}]}),
            "RolePolicyList": [], "AttachedManagedPolicies": []}],
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "broker.json", &export.to_string()).unwrap();
    e
}

#[test]
fn an_exported_prod_trust_admitting_branches_named_like_tags_is_found() {
    let report = audit(&old_render_export("rolehop-prod-service"), NOW);
    let high = |id: &str| {
        findings_of(&report, id)
            .into_iter()
            .filter(|(s, _)| *s == Severity::High)
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
    };
    // The attack of issue 10: a developer pushes branch `v-pwn`.
    assert!(
        high("RH015").contains(&"OIDC subject `project_path:acme/shop:ref_type:branch:ref:v*` of production role `rolehop-prod-service` admits every branch matching `v*`".to_owned()),
        "{:#?}",
        report.findings
    );
    assert_eq!(
        high("RH017"),
        [
            "production role `rolehop-prod-service` trusts `main` in `acme/shop` both as a branch and as a tag",
            "production role `rolehop-prod-service` trusts `v*` in `acme/shop` both as a branch and as a tag",
        ]
    );
    assert_eq!(
        high("RH016"),
        [
            "OIDC subject pattern of production role `rolehop-prod-service` admits every project matching `acme/*`"
        ]
    );

    // The same trust on a non-production role is its own business.
    let report = audit(&old_render_export("rolehop-dev-service"), NOW);
    for id in ["RH015", "RH016", "RH017"] {
        assert!(
            findings_of(&report, id).is_empty(),
            "{id}: {:#?}",
            report.findings
        );
    }
}

#[test]
fn a_customised_sub_without_ref_type_is_found_in_any_order() {
    // GitLab can emit `project_path,ref` or `project_path,ref,ref_type`: a pattern without
    // `ref_type` (or with `ref_type:*`) trusts `main` as a tag too.
    let report = audit(
        &prod_trust_export(
            "rolehop-prod-service",
            &[
                "project_path:acme/shop:ref:main",
                "project_path:acme/api:ref:release-*:ref_type:tag",
                "project_path:acme/web:ref_type:*:ref:main",
            ],
        ),
        NOW,
    );
    let titles: Vec<String> = findings_of(&report, "RH017")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        titles,
        [
            "production role `rolehop-prod-service` trusts `main` in `acme/shop` with any ref type",
            "production role `rolehop-prod-service` trusts `main` in `acme/web` with any ref type",
        ]
    );
    // The ref is read in either order, so the tag glob is still seen.
    assert!(
        findings_of(&report, "RH015").contains(&(Severity::High, "OIDC subject `project_path:acme/api:ref:release-*:ref_type:tag` of production role `rolehop-prod-service` admits every tag matching `release-*`".to_owned())),
        "{:#?}",
        report.findings
    );
}
