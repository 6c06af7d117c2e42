//! Hook binary; all behaviour lives in `agent_harness::hook`. It starts from C's `main` (see
//! `agent_harness::entry`).
#![no_main]

agent_harness::short_process_main!(agent_harness::hook::run("harness-notification"));
