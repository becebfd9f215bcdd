//! StackSet operation handling that moto cannot show (its operations finish at once, never
//! fail per account, and ignore AccountFilterType): a scripted CloudFormation endpoint answers
//! RUNNING, then FAILED with one account's reason, and records the requests it got.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rolehop_aws::rollout::{
    Account, AccountResult, CallAs, Change, Outcome, Permission, Plan, Progress, Rollout,
    RolloutInput, StackSetPlan, StackSetSpec, Timing,
};

/// Records seen by the scripted endpoint.
type Seen = Arc<Mutex<Vec<String>>>;

/// Answers CloudFormation query-protocol calls by action; records the actions seen and the
/// request bodies.
fn scripted_cloudformation(describe_statuses: Vec<&'static str>) -> (String, Seen, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let bodies2 = bodies.clone();
    std::thread::spawn(move || {
        let mut statuses = describe_statuses.into_iter();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let action = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("")
                .to_owned();
            seen2.lock().unwrap().push(action.clone());
            bodies2.lock().unwrap().push(body.clone());
            let result = match action.as_str() {
                "CreateStackInstances" | "UpdateStackSet" | "DeleteStackInstances" => {
                    "<OperationId>op-1</OperationId>".to_owned()
                }
                "DescribeStackSetOperation" => {
                    let s = statuses.next().unwrap_or("FAILED");
                    let reason = if s == "FAILED" {
                        "<StatusReason>The operation failed in 1 account</StatusReason>"
                    } else {
                        ""
                    };
                    format!("<StackSetOperation><OperationId>op-1</OperationId><Status>{s}</Status>{reason}</StackSetOperation>")
                }
                "ListStackSetOperationResults" => "<Summaries>\
                    <member><Account>222222222222</Account><Region>eu-west-1</Region><Status>SUCCEEDED</Status></member>\
                    <member><Account>333333333333</Account><Region>eu-west-1</Region><Status>FAILED</Status>\
                    <StatusReason>ResourceLogicalId:DeploymentRole, ResourceType:AWS::IAM::Role, ResourceStatusReason:Role with name rolehop-prod-deploy already exists.</StatusReason></member>\
                    </Summaries>"
                    .to_owned(),
                // Service-managed instances name the OU they came through.
                "ListStackInstances" => "<Summaries>\
                    <member><Account>222222222222</Account><Region>eu-west-1</Region><Status>CURRENT</Status><OrganizationalUnitId>ou-ab12-cdef3456</OrganizationalUnitId></member>\
                    <member><Account>333333333333</Account><Region>eu-west-1</Region><Status>INOPERABLE</Status><OrganizationalUnitId>ou-ab12-cdef3456</OrganizationalUnitId></member>\
                    </Summaries>"
                    .to_owned(),
                other => panic!("unexpected call {other}"),
            };
            let xml = format!(
                "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{action}Response>"
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    (url, seen, bodies)
}

/// A rollout against the scripted endpoint whose waits return at once.
async fn instant_rollout(url: String) -> Rollout {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await;
    Rollout::new(&config, Arc::new(|_| Box::pin(async {})), Timing::default())
}

#[derive(Default)]
struct Recorder(Mutex<Vec<AccountResult>>);

impl Progress for Recorder {
    fn step(&self, _: &str) {}
    fn accounts_started(&self, _: &str, _: &[Account], _: &str) {}
    fn account_done(&self, r: &AccountResult) {
        self.0.lock().unwrap().push(r.clone());
    }
}

/// One StackSet, `rolehop-prod`, with its template and broker stack left empty.
fn one_stack_set(permission: Permission, accounts: Vec<Account>, ous: Vec<String>) -> RolloutInput {
    RolloutInput {
        broker_account: "111111111111".parse().unwrap(),
        region: "eu-west-1".parse().unwrap(),
        broker_stack: "rolehop-broker".into(),
        broker_template: String::new(),
        broker_parameters: Vec::new(),
        stack_sets: vec![StackSetSpec {
            environment: "prod".into(),
            name: "rolehop-prod".into(),
            template: String::new(),
            accounts,
            permission: permission.clone(),
            organizational_units: ous,
        }],
        stack_set_prefix: "rolehop".into(),
        permission,
    }
}

/// A plan that leaves the broker and the StackSet's template alone and does what `fill` puts
/// in the StackSet's lists.
fn plan_of(fill: impl FnOnce(&mut StackSetPlan)) -> Plan {
    let mut set = StackSetPlan {
        environment: "prod".into(),
        name: "rolehop-prod".into(),
        set: Change::Unchanged,
        changes: vec![],
        add: vec![],
        retry: vec![],
        remove: vec![],
        current: vec![],
        organizational_units: vec![],
        add_organizational_units: vec![],
        remove_organizational_units: vec![],
        unlisted: vec![],
    };
    fill(&mut set);
    Plan {
        broker_stack: "rolehop-broker".into(),
        broker: Change::Unchanged,
        broker_changes: vec![],
        stack_sets: vec![set],
        remove_stack_sets: vec![],
    }
}

#[tokio::test]
async fn polls_a_running_operation_and_reports_each_accounts_outcome() {
    let (url, seen, bodies) = scripted_cloudformation(vec!["RUNNING", "RUNNING", "FAILED"]);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await;
    let sleeps = Arc::new(AtomicUsize::new(0));
    let counter = sleeps.clone();
    let sleep: rolehop_aws::rollout::Sleep = Arc::new(move |d| {
        assert_eq!(d, Duration::from_secs(7));
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    });
    let r = Rollout::new(
        &config,
        sleep,
        Timing {
            poll: Duration::from_secs(7),
            max_polls: 10,
        },
    );
    let accounts = vec![
        Account {
            name: "a".into(),
            id: "222222222222".into(),
        },
        Account {
            name: "b".into(),
            id: "333333333333".into(),
        },
    ];
    let input = one_stack_set(
        Permission::SelfManaged {
            administration_role_arn: "arn:aws:iam::111111111111:role/Admin".parse().unwrap(),
            execution_role_name: "Exec".into(),
        },
        accounts.clone(),
        vec![],
    );
    let plan = plan_of(|p| {
        p.add = accounts;
    });
    let progress = Recorder::default();
    let report = r.apply(&input, &plan, &progress).await.unwrap();

    assert_eq!(
        sleeps.load(Ordering::SeqCst),
        2,
        "two RUNNING answers, two waits"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "CreateStackInstances",
            "DescribeStackSetOperation",
            "DescribeStackSetOperation",
            "DescribeStackSetOperation",
            "ListStackSetOperationResults"
        ]
    );
    // Self-managed StackSets belong to the caller's account: no CallAs.
    assert!(
        bodies.lock().unwrap().iter().all(|b| !b.contains("CallAs")),
        "{:?}",
        bodies.lock().unwrap()
    );
    assert_eq!(report.accounts[0].outcome, Outcome::Created);
    match &report.accounts[1].outcome {
        Outcome::Failed(reason) => assert!(reason.contains("already exists"), "{reason}"),
        o => panic!("account b should have failed, got {o}"),
    }
    assert_eq!(
        progress.0.lock().unwrap().len(),
        2,
        "each account reported as it ends"
    );
}

#[tokio::test]
async fn service_managed_deploys_by_ou_and_names_a_failed_member_with_its_reason() {
    let (url, seen, bodies) = scripted_cloudformation(vec!["FAILED"]);
    let r = instant_rollout(url).await;
    let accounts = vec![
        Account {
            name: "a".into(),
            id: "222222222222".into(),
        },
        Account {
            name: "b".into(),
            id: "333333333333".into(),
        },
    ];
    let ou = "ou-ab12-cdef3456".to_owned();
    let input = one_stack_set(
        Permission::ServiceManaged {
            call_as: CallAs::DelegatedAdmin,
        },
        accounts.clone(),
        vec![ou.clone()],
    );
    let plan = plan_of(|p| {
        p.add = accounts;
        p.organizational_units = vec![ou.clone()];
        p.add_organizational_units = vec![ou.clone()];
    });
    let report = r.apply(&input, &plan, &Recorder::default()).await.unwrap();

    let create = seen
        .lock()
        .unwrap()
        .iter()
        .position(|a| a == "CreateStackInstances")
        .expect("CreateStackInstances was called");
    let body = bodies.lock().unwrap()[create].clone();
    // Service-managed StackSets refuse account targets: the OU is the target.
    assert!(
        body.contains(&format!(
            "DeploymentTargets.OrganizationalUnitIds.member.1={ou}"
        )),
        "{body}"
    );
    assert!(!body.contains("Accounts.member"), "{body}");
    // A delegated administrator's StackSets exist only for requests that say so: every
    // request about the StackSet carries CallAs.
    let bodies = bodies.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    for (action, body) in seen.iter().zip(&bodies) {
        if action.contains("StackSet") || action.contains("StackInstances") {
            assert!(body.contains("CallAs=DELEGATED_ADMIN"), "{action}: {body}");
        }
    }
    assert_eq!(report.accounts[0].outcome, Outcome::Created);
    match &report.accounts[1].outcome {
        Outcome::Failed(reason) => assert!(reason.contains("already exists"), "{reason}"),
        o => panic!("account b should have failed, got {o}"),
    }
}

#[tokio::test]
async fn service_managed_retries_a_failed_member_within_its_ou() {
    let (url, seen, bodies) = scripted_cloudformation(vec!["SUCCEEDED"]);
    let r = instant_rollout(url).await;
    let a = Account {
        name: "a".into(),
        id: "222222222222".into(),
    };
    let b = Account {
        name: "b".into(),
        id: "333333333333".into(),
    };
    let ou = "ou-ab12-cdef3456".to_owned();
    let input = one_stack_set(
        Permission::ServiceManaged {
            call_as: CallAs::DelegatedAdmin,
        },
        vec![a.clone(), b.clone()],
        vec![ou.clone()],
    );
    let plan = plan_of(|p| {
        p.retry = vec![b];
        p.current = vec![a];
        p.organizational_units = vec![ou.clone()];
    });
    let report = r.apply(&input, &plan, &Recorder::default()).await.unwrap();

    assert_eq!(seen.lock().unwrap()[0], "UpdateStackSet");
    let body = bodies.lock().unwrap()[0].clone();
    // Only the failed member, and only within the OU: accounts alone are refused for
    // service-managed StackSets, and the OU alone would redeploy every member.
    for part in [
        format!("DeploymentTargets.OrganizationalUnitIds.member.1={ou}"),
        "DeploymentTargets.Accounts.member.1=333333333333".to_owned(),
        "DeploymentTargets.AccountFilterType=INTERSECTION".to_owned(),
    ] {
        assert!(body.contains(&part), "{part} not in {body}");
    }
    assert!(!body.contains("&Accounts.member"), "{body}");
    assert_eq!(report.accounts[0].outcome, Outcome::Unchanged);
    // The script's operation results fail that account again: its reason is reported.
    match &report.accounts[1].outcome {
        Outcome::Failed(reason) => assert!(reason.contains("already exists"), "{reason}"),
        o => panic!("account b should have failed, got {o}"),
    }
}

#[tokio::test]
async fn an_ou_dropped_from_the_topology_is_removed_by_ou() {
    let (url, seen, bodies) = scripted_cloudformation(vec!["SUCCEEDED"]);
    let r = instant_rollout(url).await;
    let input = one_stack_set(
        Permission::ServiceManaged {
            call_as: CallAs::DelegatedAdmin,
        },
        vec![],
        vec!["ou-ab12-keep0000".into()],
    );
    let plan = plan_of(|p| {
        p.remove = vec!["222222222222".into()];
        p.organizational_units = vec!["ou-ab12-keep0000".into()];
        p.remove_organizational_units = vec!["ou-ab12-gone0000".into()];
    });
    let report = r.apply(&input, &plan, &Recorder::default()).await.unwrap();

    assert_eq!(seen.lock().unwrap()[0], "DeleteStackInstances");
    let body = bodies.lock().unwrap()[0].clone();
    assert!(
        body.contains("DeploymentTargets.OrganizationalUnitIds.member.1=ou-ab12-gone0000"),
        "{body}"
    );
    assert!(!body.contains("Accounts.member"), "{body}");
    assert!(body.contains("RetainStacks=false"), "{body}");
    assert_eq!(report.accounts[0].id, "222222222222");
    assert_eq!(report.accounts[0].outcome, Outcome::Removed);
}
