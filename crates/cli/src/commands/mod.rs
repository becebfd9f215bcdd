//! One module per subcommand: its flags (`Args`) and its `run`.

pub mod assume;
pub mod audit;
pub mod audit_gate;
pub mod credential_process;
pub mod doctor;
pub mod exec;
pub mod gate;
pub mod graph;
pub mod render;
pub mod rollout;
pub mod rotate;
pub mod selection;
pub mod simulate;
