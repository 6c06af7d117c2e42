//! Status line command for Claude Code; all behaviour lives in `agent_harness::quota::statusline`.
//! It starts from C's `main` (see `agent_harness::entry`).
#![no_main]

agent_harness::short_process_main!(agent_harness::quota::statusline::run());
