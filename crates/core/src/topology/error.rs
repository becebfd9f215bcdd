//! Topology errors: every broken rule with its location in the user's file.

use std::fmt;

use crate::span::{Location, caret, printable};

/// One broken rule, located in the user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where: file, line, column and the source line.
    pub location: Location,
    /// A short stable name of the rule (`account-id`, `role-name`, `shared-account`, ...).
    pub rule: &'static str,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]{}",
            printable(&self.location.to_string()),
            printable(&self.message),
            self.rule,
            caret(&self.location)
        )
    }
}

/// Everything wrong with a topology file (all rules are checked, not just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    /// One per broken rule, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if n > 1 {
            write!(f, "\n{n} problems in the topology")?;
        }
        Ok(())
    }
}

impl std::error::Error for TopologyError {}

impl crate::exit::HasExit for TopologyError {
    /// Every rule a topology breaks is a problem in the user's file.
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Input
    }
}
