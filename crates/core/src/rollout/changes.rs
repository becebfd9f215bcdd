//! What changed between a deployed template and the one rendered now, said the way
//! `terraform plan` says it: the resources added, removed or changed, each changed property
//! named with a few of its changed lines. Comments carry no meaning for CloudFormation and are
//! ignored, both here and when deciding whether anything changed at all, so a reworded comment
//! (or a template from an older rolehop that named the topology's file) updates nothing.
//!
//! rolehop renders every template in one shape (`yaml.rs` in rolehop-render): top-level keys at
//! column 0, resources at 2 spaces, `Type`/`Properties` at 4, properties at 6. This reads that
//! shape line by line instead of parsing YAML, which keeps core free of a YAML parser; a
//! template in another shape still compares correctly, only less finely (as whole sections).

/// At most this many changed lines are shown per property; the rest are counted.
const LINES_PER_PROPERTY: usize = 6;

/// The lines that carry meaning: no comment lines, no trailing whitespace, no blank lines.
fn meaningful(template: &str) -> Vec<&str> {
    template
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

/// True when the two templates mean the same to CloudFormation as far as rolehop can tell:
/// equal but for comments, blank lines and trailing whitespace.
pub fn same_template(deployed: &str, wanted: &str) -> bool {
    meaningful(deployed) == meaningful(wanted)
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// `key` of a `key: ...` line at exactly `depth` spaces.
fn key_at(l: &str, depth: usize) -> Option<&str> {
    if indent(l) != depth || l.trim_start().starts_with('-') {
        return None;
    }
    let rest = &l[depth..];
    let key = rest.split_once(':')?.0;
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

/// Blocks of lines keyed by the line that opens them at `depth` (lines before the first
/// key are kept under the empty key).
fn blocks<'a>(lines: &[&'a str], depth: usize) -> Vec<(String, Vec<&'a str>)> {
    let mut out: Vec<(String, Vec<&'a str>)> = Vec::new();
    for l in lines {
        match key_at(l, depth) {
            Some(k) => out.push((k.to_owned(), vec![*l])),
            None => match out.last_mut() {
                Some((_, b)) => b.push(l),
                None => out.push((String::new(), vec![*l])),
            },
        }
    }
    out
}

fn find<'a, 'b>(bs: &'b [(String, Vec<&'a str>)], key: &str) -> Option<&'b Vec<&'a str>> {
    bs.iter().find(|(k, _)| k == key).map(|(_, b)| b)
}

/// A resource's `Type`, for messages.
fn resource_type(block: &[&str]) -> String {
    block
        .iter()
        .find_map(|l| key_at(l, 4).filter(|k| *k == "Type").map(|_| *l))
        .and_then(|l| l.split_once(':'))
        .map(|(_, t)| t.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// Lines only in `old` (as `-`) and only in `new` (as `+`), in order, capped.
fn line_diff(old: &[&str], new: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let gone = old.iter().filter(|l| !new.contains(l)).map(|l| ("-", l));
    let came = new.iter().filter(|l| !old.contains(l)).map(|l| ("+", l));
    let all: Vec<(&str, &&str)> = gone.chain(came).collect();
    for (sign, l) in all.iter().take(LINES_PER_PROPERTY) {
        out.push(format!("{sign} {}", l.trim()));
    }
    if all.len() > LINES_PER_PROPERTY {
        out.push(format!(
            "... {} more changed line(s)",
            all.len() - LINES_PER_PROPERTY
        ));
    }
    out
}

/// What changed from `deployed` to `wanted`: one line per added (`+`), removed (`-`) or
/// changed (`~`) resource or top-level section, each changed property with a few of its
/// changed lines indented below it. Empty when the templates are the same.
pub fn template_changes(deployed: &str, wanted: &str) -> Vec<String> {
    let (old, new) = (meaningful(deployed), meaningful(wanted));
    if old == new {
        return Vec::new();
    }
    let (old_top, new_top) = (blocks(&old, 0), blocks(&new, 0));
    let mut out = Vec::new();
    let mut keys: Vec<&str> = new_top.iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(
        old_top
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !new_top.iter().any(|(n, _)| n == k)),
    );
    for key in keys {
        let (o, n) = (find(&old_top, key), find(&new_top, key));
        if o == n {
            continue;
        }
        if key == "Resources"
            && let (Some(o), Some(n)) = (o, n)
        {
            out.extend(resource_changes(o, n));
            continue;
        }
        let name = if key.is_empty() { "(header)" } else { key };
        match (o, n) {
            (None, Some(_)) => out.push(format!("+ {name}")),
            (Some(_), None) => out.push(format!("- {name}")),
            (Some(o), Some(n)) if o.len() > 1 && n.len() > 1 && indent(n[1]) == 2 => {
                out.extend(entry_changes(name, o, n));
            }
            (Some(o), Some(n)) => {
                out.push(format!("~ {name}"));
                out.extend(line_diff(o, n).into_iter().map(|l| format!("    {l}")));
            }
            (None, None) => {}
        }
    }
    out
}

/// A mapping section other than `Resources` (`Outputs`, `Parameters`): its entries by name.
fn entry_changes(section: &str, old: &[&str], new: &[&str]) -> Vec<String> {
    let (old_e, new_e) = (blocks(&old[1..], 2), blocks(&new[1..], 2));
    let mut out = Vec::new();
    for (k, n) in &new_e {
        match find(&old_e, k) {
            None => out.push(format!("+ {section}.{k}")),
            Some(o) if o == n => {}
            Some(o) => {
                out.push(format!("~ {section}.{k}"));
                out.extend(line_diff(o, n).into_iter().map(|l| format!("    {l}")));
            }
        }
    }
    for (k, _) in &old_e {
        if find(&new_e, k).is_none() {
            out.push(format!("- {section}.{k}"));
        }
    }
    out
}

fn resource_changes(old: &[&str], new: &[&str]) -> Vec<String> {
    // Skip the `Resources:` line itself.
    let (old_r, new_r) = (blocks(&old[1..], 2), blocks(&new[1..], 2));
    let mut out = Vec::new();
    for (id, n) in &new_r {
        match find(&old_r, id) {
            None => out.push(format!("+ {id} ({})", resource_type(n))),
            Some(o) if o == n => {}
            Some(o) => {
                out.push(format!("~ {id} ({})", resource_type(n)));
                out.extend(property_changes(o, n));
            }
        }
    }
    for (id, o) in &old_r {
        if find(&new_r, id).is_none() {
            out.push(format!("- {id} ({})", resource_type(o)));
        }
    }
    out
}

/// The properties (6 spaces deep, under `Properties:`) that differ, or the resource's other
/// keys when they are what changed.
fn property_changes(old: &[&str], new: &[&str]) -> Vec<String> {
    let (old_p, new_p) = (blocks(&old[1..], 6), blocks(&new[1..], 6));
    let mut out = Vec::new();
    let mut names: Vec<&str> = new_p.iter().map(|(k, _)| k.as_str()).collect();
    names.extend(
        old_p
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !new_p.iter().any(|(n, _)| n == k)),
    );
    for name in names {
        let (o, n) = (find(&old_p, name), find(&new_p, name));
        if o == n {
            continue;
        }
        let label = if name.is_empty() {
            "Type/Properties"
        } else {
            name
        };
        let (o, n) = (
            o.map_or(&[][..], Vec::as_slice),
            n.map_or(&[][..], Vec::as_slice),
        );
        out.push(format!("    {label}:"));
        out.extend(line_diff(o, n).into_iter().map(|l| format!("      {l}")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const OLD: &str = "\
# Generated by `rolehop render` from rolehop.toml.
AWSTemplateFormatVersion: \"2010-09-09\"
Resources:
  # The role.
  DeploymentRole:
    Type: \"AWS::IAM::Role\"
    Properties:
      RoleName: \"deploy\"
      MaxSessionDuration: 3600
      Tags:
        - Key: \"a\"
          Value: \"1\"
  OldPolicy:
    Type: \"AWS::IAM::Policy\"
    Properties:
      PolicyName: \"old\"
Outputs:
  Arn:
    Value: 1
";

    #[test]
    fn a_comment_or_the_topologys_file_name_is_no_change() {
        let renamed = OLD.replace("from rolehop.toml.", "from the topology.");
        let reworded = renamed.replace("# The role.", "# The deployment role.\n");
        assert!(same_template(OLD, &reworded));
        assert!(template_changes(OLD, &reworded).is_empty());
    }

    #[test]
    fn changed_added_and_removed_resources_are_named_with_the_changed_property() {
        let new = OLD
            .replace("Value: \"1\"", "Value: \"2\"")
            .replace(
                "  OldPolicy:\n    Type: \"AWS::IAM::Policy\"\n    Properties:\n      PolicyName: \"old\"\n",
                "  NewPolicy:\n    Type: \"AWS::IAM::Policy\"\n    Properties:\n      PolicyName: \"new\"\n",
            );
        let c = template_changes(OLD, &new);
        assert_eq!(
            c,
            [
                "~ DeploymentRole (AWS::IAM::Role)",
                "    Tags:",
                "      - Value: \"1\"",
                "      + Value: \"2\"",
                "+ NewPolicy (AWS::IAM::Policy)",
                "- OldPolicy (AWS::IAM::Policy)",
            ],
            "{c:#?}"
        );
        assert!(!same_template(OLD, &new));
    }

    #[test]
    fn a_changed_section_outside_resources_is_named() {
        let new = OLD.replace("Value: 1", "Value: 2");
        assert_eq!(
            template_changes(OLD, &new),
            ["~ Outputs.Arn", "    - Value: 1", "    + Value: 2"]
        );
        let new = OLD.replace(
            "AWSTemplateFormatVersion: \"2010-09-09\"",
            "AWSTemplateFormatVersion: \"x\"",
        );
        assert_eq!(
            template_changes(OLD, &new),
            [
                "~ AWSTemplateFormatVersion",
                "    - AWSTemplateFormatVersion: \"2010-09-09\"",
                "    + AWSTemplateFormatVersion: \"x\""
            ]
        );
    }
}
