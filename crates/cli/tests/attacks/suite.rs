//! The bookkeeping of the attack suite: a threat is a list of probes (requests with the answer
//! they must get), every probe of every threat is judged once by every engine, and the table
//! of threats in docs/threat-model.md is generated from the judged catalogue.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rolehop_policy::Decision;
use rolehop_testkit::iam_simulate;
use serde_json::Value;

use crate::engines;
use crate::world::{Role, Token, World, web_identity};

/// Why a probe is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The legitimate request next to an attack: it must be allowed, or a refusal proves
    /// nothing.
    Control,
    /// The attack itself.
    Attack,
}

/// The web-identity part of a probe, for the in-test matcher.
#[derive(Clone)]
pub struct Web {
    trust: Value,
    provider: String,
    claims: BTreeMap<String, String>,
}

/// One request (an STS call: one or more authorizations) and the answer it must get.
#[derive(Clone)]
pub struct Probe {
    pub label: String,
    pub cases: Vec<Value>,
    web: Option<Web>,
    kind: Kind,
    allowed: bool,
}

impl Probe {
    /// An `AssumeRole` call (its cases come from `world::assume`).
    pub fn hop(label: &str, cases: Vec<Value>) -> Probe {
        Probe {
            label: label.to_owned(),
            cases,
            web: None,
            kind: Kind::Attack,
            allowed: false,
        }
    }

    /// An `AssumeRoleWithWebIdentity` call with `token` on `role`.
    pub fn web(world: &World, label: &str, token: &Token, role: &Role) -> Probe {
        let provider = world.provider_for(token);
        let claims = BTreeMap::from([
            (format!("{}:sub", token.host()), token.sub.clone()),
            (format!("{}:aud", token.host()), token.aud.clone()),
        ]);
        Probe {
            label: label.to_owned(),
            cases: vec![web_identity(&provider, token, role)],
            web: Some(Web {
                trust: role.trust.clone(),
                provider,
                claims,
            }),
            kind: Kind::Attack,
            allowed: false,
        }
    }
}

/// A threat of docs/threat-model.md and the attacks that test it.
pub struct Threat {
    /// The test's name.
    pub id: &'static str,
    pub threat: &'static str,
    pub attack: &'static str,
    /// Who refuses the attack (AWS trust/identity policy, GitLab, rolehop's own check), or,
    /// for an attack that succeeds, what limits it.
    pub refused_by: &'static str,
    pub probes: Vec<Probe>,
    /// The same attack against moto with auth on, through the real binary or the aws CLI.
    pub moto: Option<fn(&crate::moto::Deployed)>,
    /// An attack through the `rolehop` binary itself, and the name of what it exercises.
    pub cli: Option<(&'static str, fn())>,
}

impl Threat {
    pub fn new(
        id: &'static str,
        threat: &'static str,
        attack: &'static str,
        refused_by: &'static str,
    ) -> Threat {
        Threat {
            id,
            threat,
            attack,
            refused_by,
            probes: Vec::new(),
            moto: None,
            cli: None,
        }
    }

    /// A legitimate request that must be allowed.
    pub fn control(mut self, p: Probe) -> Threat {
        self.probes.push(Probe {
            kind: Kind::Control,
            allowed: true,
            ..p
        });
        self
    }

    /// An attack that must be refused.
    pub fn refused(mut self, p: Probe) -> Threat {
        self.probes.push(Probe {
            kind: Kind::Attack,
            allowed: false,
            ..p
        });
        self
    }

    /// An attack AWS lets through: the suite asserts it succeeds, so the threat model cannot
    /// claim otherwise, and `refused_by` says what (if anything) limits it.
    pub fn admitted(mut self, p: Probe) -> Threat {
        self.probes.push(Probe {
            kind: Kind::Attack,
            allowed: true,
            ..p
        });
        self
    }

    pub fn with_moto(mut self, f: fn(&crate::moto::Deployed)) -> Threat {
        self.moto = Some(f);
        self
    }

    pub fn with_cli(mut self, engine: &'static str, f: fn()) -> Threat {
        self.cli = Some((engine, f));
        self
    }
}

/// What the engines said about one probe.
pub struct Judgement {
    pub rolehop: Vec<Decision>,
    pub iam_simulate: Vec<iam_simulate::Decision>,
    /// The in-test matcher's answer (web-identity probes only).
    pub matcher: Option<bool>,
}

pub struct Judged {
    pub threat: Threat,
    pub judgements: Vec<Judgement>,
}

/// Every probe of the catalogue, judged once: iam-simulate gets them all in one call.
pub static JUDGED: LazyLock<Vec<Judged>> = LazyLock::new(|| {
    let threats = crate::catalogue();
    let all: Vec<Value> = threats
        .iter()
        .flat_map(|t| t.probes.iter().flat_map(|p| p.cases.iter().cloned()))
        .collect();
    let mut rolehop = engines::rolehop(&all).into_iter();
    let mut sim = engines::iam_simulate(&all).into_iter();
    threats
        .into_iter()
        .map(|threat| {
            let judgements = threat
                .probes
                .iter()
                .map(|p| Judgement {
                    rolehop: rolehop.by_ref().take(p.cases.len()).collect(),
                    iam_simulate: sim.by_ref().take(p.cases.len()).collect(),
                    matcher: p
                        .web
                        .as_ref()
                        .map(|w| engines::web_trust_admits(&w.trust, &w.provider, &w.claims)),
                })
                .collect();
            Judged { threat, judgements }
        })
        .collect()
});

fn is_web(case: &Value) -> bool {
    case["request"]["action"] == "sts:AssumeRoleWithWebIdentity"
}

/// Whether iam-simulate can judge a case: anything but a web identity whose trust policy has
/// conditions (it drops the OIDC keys those conditions read).
fn iam_simulate_judges(case: &Value) -> bool {
    let conditional = |s: &Value| s.get("Condition").is_some();
    !is_web(case)
        || match &case["resourcePolicy"]["Statement"] {
            Value::Array(a) => !a.iter().any(conditional),
            s => !conditional(s),
        }
}

/// Checks every probe of one judged threat: the engines agree on every request, every attack
/// gets the answer the threat model gives, and there is a legitimate control that is allowed.
/// Returns one line per probe for the test's output.
pub fn check(j: &Judged) -> Vec<String> {
    let t = &j.threat;
    // A threat decided by the rolehop binary alone (no AWS request) has no probes.
    assert!(
        t.probes.is_empty() && t.cli.is_some()
            || t.probes.iter().any(|p| p.kind == Kind::Control)
                && t.probes.iter().any(|p| p.kind == Kind::Attack),
        "{}: an attack needs a legitimate control request next to it, or a refusal could be vacuous",
        t.id
    );
    let mut lines = Vec::new();
    for (p, judgement) in t.probes.iter().zip(&j.judgements) {
        for ((case, ours), theirs) in p
            .cases
            .iter()
            .zip(&judgement.rolehop)
            .zip(&judgement.iam_simulate)
        {
            let name = case["name"].as_str().unwrap_or_default();
            assert!(
                theirs.error.is_none(),
                "{}: iam-simulate refused `{name}`: {:?}",
                t.id,
                theirs.error
            );
            if !iam_simulate_judges(case) {
                // iam-simulate cannot judge these: it must say so, or the exclusion is wrong.
                let host_sub = case["request"]["context"]
                    .as_object()
                    .and_then(|c| c.keys().find(|k| k.ends_with(":sub")))
                    .cloned()
                    .unwrap_or_default();
                assert!(
                    theirs.ignored_context_keys.contains(&host_sub),
                    "{}: iam-simulate now evaluates `{host_sub}` (ignored: {:?}): judge `{name}` with it too",
                    t.id,
                    theirs.ignored_context_keys
                );
                assert_eq!(
                    theirs.decision.as_deref(),
                    Some("ImplicitlyDenied"),
                    "{}: `{name}`",
                    t.id
                );
                assert_eq!(
                    judgement.matcher,
                    Some(ours.is_allowed()),
                    "{}: rolehop says {ours} and the in-test StringLike matcher disagrees on `{name}`",
                    t.id
                );
            } else {
                if let Some(m) = judgement.matcher {
                    assert_eq!(
                        m,
                        ours.is_allowed(),
                        "{}: the in-test matcher disagrees on `{name}`",
                        t.id
                    );
                }
                assert_eq!(
                    theirs.decision.as_deref(),
                    Some(ours.as_str()),
                    "{}: the engines disagree on `{name}`: rolehop {ours}, iam-simulate {:?} (it ignored {:?})",
                    t.id,
                    theirs.decision,
                    theirs.ignored_context_keys
                );
            }
        }
        let allowed = judgement.rolehop.iter().all(|d| d.is_allowed());
        let decisions: Vec<String> = p
            .cases
            .iter()
            .zip(&judgement.rolehop)
            .map(|(c, d)| format!("{} {d}", c["request"]["action"].as_str().unwrap_or("?")))
            .collect();
        assert_eq!(
            allowed,
            p.allowed,
            "{}: {:?} `{}` was {}: {decisions:?}",
            t.id,
            p.kind,
            p.label,
            if allowed { "allowed" } else { "refused" }
        );
        lines.push(format!(
            "{:?} {}: {} [{}]",
            p.kind,
            p.label,
            if allowed { "allowed" } else { "refused" },
            decisions.join(", ")
        ));
    }
    lines
}

/// The judged threat with this test name, checked; its own CLI attack runs too.
pub fn verify(id: &str) {
    let j = JUDGED
        .iter()
        .find(|j| j.threat.id == id)
        .unwrap_or_else(|| panic!("`{id}` is not in the catalogue"));
    for line in check(j) {
        eprintln!("{id}: {line}");
    }
    if let Some((_, f)) = j.threat.cli {
        f();
    }
}

/// Which engines verified a threat, as the table says it.
pub fn engines_of(j: &Judged) -> String {
    let mut e = Vec::new();
    let cases = || j.threat.probes.iter().flat_map(|p| p.cases.iter());
    let web = cases().any(|c| !iam_simulate_judges(c));
    let aws = cases().any(iam_simulate_judges);
    if !j.threat.probes.is_empty() {
        e.push("rolehop evaluator");
    }
    if aws {
        e.push("iam-simulate");
    }
    if web {
        e.push("in-test StringLike matcher (iam-simulate ignores `sub`/`aud`)");
    }
    if j.threat.moto.is_some() {
        e.push("moto (auth on)");
    }
    if let Some((engine, _)) = j.threat.cli {
        e.push(engine);
    }
    e.join(", ")
}

/// The table of docs/threat-model.md: threat, attack, who refuses it, verdict, engines.
pub fn table() -> String {
    let mut out = String::from(
        "| test (crates/cli/tests/attacks) | threat | attack | who refuses it | AWS's verdict on the attack | verified by |\n|---|---|---|---|---|---|\n",
    );
    for j in JUDGED.iter() {
        let t = &j.threat;
        let attacks = || t.probes.iter().filter(|p| p.kind == Kind::Attack);
        let admitted = attacks().filter(|p| p.allowed).count();
        let refused = attacks().count() - admitted;
        let verdict = match (refused, admitted) {
            (0, 0) => "no IAM request (rolehop's own check)".to_owned(),
            (r, 0) => format!("refused ({r} of {r})"),
            (0, a) => format!("**admitted** ({a} of {a})"),
            (r, a) => format!("{r} refused, **{a} admitted**"),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {verdict} | {} |\n",
            t.id,
            t.threat,
            t.attack,
            t.refused_by,
            engines_of(j)
        ));
    }
    out
}
