//! Hook binary; all behaviour lives in `agent_harness::hook`.
fn main() -> std::process::ExitCode {
    agent_harness::hook::run("harness-directory-added")
}
