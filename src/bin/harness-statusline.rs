//! Status line command for Claude Code; all behaviour lives in `agent_harness::quota::statusline`.
fn main() -> std::process::ExitCode {
    agent_harness::quota::statusline::run()
}
