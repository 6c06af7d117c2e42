//! agent-harness: Claude Code and Gemini CLI as one team.
//!
//! Hook binaries (`src/bin/harness-*.rs`) feed every lifecycle event of every session into one
//! SQLite store through [`hook::run`]; the `harness` CLI reads it back. See DESIGN.md for the
//! shape and the contracts.

pub mod config;
pub mod decision;
pub mod entry;
pub mod error;
pub mod event;
pub mod export;
pub mod gemini;
pub mod hook;
pub mod install;
pub mod log;
pub mod memory;
pub mod paths;
pub mod payload;
pub mod policy;
pub mod private_file;
pub mod process;
pub mod quota;
pub mod redact;
pub mod review;
pub mod route;
pub mod shell;
pub mod store;
pub mod text;
pub mod time;
pub mod usage;
