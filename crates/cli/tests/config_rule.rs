//! One rule for which topology every command reads: `-c/--config FILE`, else `ROLEHOP_CONFIG`,
//! else `rolehop.toml` in the current directory. Each command is run the three ways against a
//! topology broken at a known line: the error must name the file the rule picks (exit 3), and
//! nothing may be written or called before it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;

/// Every command that reads a topology, with the arguments it needs besides it.
const COMMANDS: &[&[&str]] = &[
    &["validate"],
    &["render", "-o", "out"],
    &["rollout", "--dry-run"],
    &["audit"],
    &["graph"],
    &["rotate", "--env", "prod"],
    &["assume", "--env", "prod"],
    &["exec", "--env", "prod", "--", "true"],
    &["credential-process", "--env", "prod"],
    &["doctor", "--env", "prod"],
];

const BROKEN: &str = "[broker]\naccount_id = \n";

fn rolehop(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nothing may reach AWS: a call would fail on this closed port with exit 6.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .current_dir(dir);
    c
}

fn check(cmd: &mut Command, file: &str, what: &str) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{what}: {err}");
    assert!(err.contains(&format!("{file}:2:")), "{what}: {err}");
}

#[test]
fn every_command_reads_the_flag_then_rolehop_config_then_rolehop_toml() {
    for args in COMMANDS {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("rolehop.toml"), BROKEN).unwrap();
        std::fs::write(d.join("by-env.toml"), BROKEN).unwrap();
        std::fs::write(d.join("by-flag.toml"), BROKEN).unwrap();
        let what = args.join(" ");

        check(
            rolehop(d).args(*args),
            "rolehop.toml",
            &format!("{what} (default)"),
        );
        check(
            rolehop(d).env("ROLEHOP_CONFIG", "by-env.toml").args(*args),
            "by-env.toml",
            &format!("{what} (ROLEHOP_CONFIG)"),
        );
        // The flag wins over the variable, in its long and short form.
        for flag in ["--config", "-c"] {
            let mut c = rolehop(d);
            c.env("ROLEHOP_CONFIG", "by-env.toml")
                .arg(args[0])
                .args([flag, "by-flag.toml"])
                .args(&args[1..]);
            check(&mut c, "by-flag.toml", &format!("{what} ({flag})"));
        }
        assert!(
            !d.join("out").exists(),
            "{what}: wrote output from a broken topology"
        );
    }
}

#[test]
fn without_any_topology_each_command_says_how_to_name_one() {
    for args in COMMANDS {
        let dir = tempfile::tempdir().unwrap();
        let out = rolehop(dir.path()).args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {err}");
        assert!(
            err.contains("no topology: `rolehop.toml` does not exist in this directory; name one with -c FILE or ROLEHOP_CONFIG"),
            "{args:?}: {err}"
        );
    }
}

/// A job file is one environment's view: the platform commands refuse it, so rolling one
/// out can never tear the other environments down.
#[test]
fn platform_commands_refuse_a_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example = rolehop_testkit::workspace_root().join("examples/oidc/rolehop.toml");
    rolehop(d)
        .arg("render")
        .arg("-c")
        .arg(&example)
        .args(["-o", "rolehop"])
        .assert()
        .success();
    for args in [
        &["validate"][..],
        &["render", "-o", "again"],
        &["rollout", "--dry-run"],
        &["audit"],
        &["rotate", "--env", "prod"],
    ] {
        let out = rolehop(d)
            .env("ROLEHOP_CONFIG", "rolehop/jobs/prod.toml")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("is a job file"), "{args:?}: {err}");
    }
}

/// Role ARNs instead of a file, with ROLEHOP_CONFIG also set: two answers to one question,
/// refused rather than guessed.
#[test]
fn role_arns_and_rolehop_config_together_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = rolehop(dir.path())
        .env("ROLEHOP_CONFIG", "rolehop.toml")
        .env(
            "ROLEHOP_SERVICE_ROLE_ARN",
            "arn:aws:iam::111111111111:role/s",
        )
        .env(
            "ROLEHOP_DEPLOY_ROLE_ARN",
            "arn:aws:iam::222222222222:role/d",
        )
        .arg("assume")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("both ROLEHOP_CONFIG"), "{err}");
}

/// `init` -> `validate` -> `render`, as the README's quick start: what init writes from flags
/// alone (no terminal) passes validate, and render writes it; asked for nothing on a pipe,
/// init names the missing flags instead of waiting.
#[test]
fn init_writes_a_topology_that_validates_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = rolehop(d).arg("init").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--broker, --account, --project"), "{err}");
    assert!(!d.join("rolehop.toml").exists());

    rolehop(d)
        .args([
            "init",
            "--mode",
            "oidc",
            "--broker",
            "111111111111",
            "--account",
            "production:prod-eu=222222222222",
            "--account",
            "staging:stage=333333333333",
            "--account",
            "dev:dev=444444444444",
            "--project",
            "northwind/web",
            "--project",
            "northwind/api",
        ])
        .assert()
        .success();
    let text = std::fs::read_to_string(d.join("rolehop.toml")).unwrap();
    assert!(
        text.contains("protected = true") && text.contains("# "),
        "{text}"
    );
    rolehop(d)
        .arg("validate")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "rolehop.toml: valid: 3 environment(s), 3 target account(s)",
        ));
    rolehop(d)
        .args(["render", "-o", "rolehop"])
        .assert()
        .success();
    assert!(d.join("rolehop/jobs/production.toml").exists());
    // A second init does not overwrite the user's work.
    let out = rolehop(d)
        .args(["init", "--broker", "111111111111"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(d.join("rolehop.toml")).unwrap(),
        text
    );
}

/// The command line as a whole: every command's help opens with its own sentence, every
/// `--config` says where the default comes from, `--fail-on` lists the severities, and the
/// completion scripts know the commands and the short flags.
#[test]
fn help_and_completions_describe_one_consistent_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| -> String {
        let out = rolehop(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut abouts = std::collections::BTreeMap::new();
    for args in COMMANDS
        .iter()
        .chain([&["init"][..], &["simulate"], &["completions"]].iter())
    {
        let text = help(&[args[0], "--help"]);
        let about = text.lines().next().unwrap().to_owned();
        if let Some(other) = abouts.insert(about.clone(), args[0]) {
            panic!(
                "`{}` and `{other}` open their help with the same text: {about}",
                args[0]
            );
        }
        if args[0] != "simulate" && args[0] != "completions" {
            assert!(
                text.contains("-c, --config <FILE>")
                    && text.contains("$ROLEHOP_CONFIG, else rolehop.toml"),
                "{}: {text}",
                args[0]
            );
        }
    }
    let audit = help(&["audit", "--help"]);
    assert!(
        audit.contains("[possible values: info, low, medium, high, critical]"),
        "{audit}"
    );
    assert!(help(&["render", "--help"]).contains("-o, --out <DIR>"));
    let bash = help(&["completions", "bash"]);
    for word in ["validate", "init", "rollout", "--config", "--dry-run", "-o"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(help(&["completions", "zsh"]).contains("#compdef rolehop"));
}
