//! One module per subcommand: its flags (`Args`) and its `run`.

pub mod assume;
pub mod audit;
pub mod completions;
pub mod cred_cache;
pub mod credential_process;
pub mod doctor;
pub mod exec;
pub mod exec_served;
pub mod gate;
pub mod gate_lambda;
pub mod graph;
pub mod init;
pub mod render;
pub mod rollout;
pub mod rotate;
pub mod selection;
pub mod serve_creds;
pub mod simulate;
pub mod validate;
