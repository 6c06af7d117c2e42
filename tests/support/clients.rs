//! The pinned real clients for end-to-end tests: `@anthropic-ai/claude-code@2.1.197` and
//! `@google/gemini-cli@0.61.0`, installed from the npm registry by `scripts/install-clients`
//! into `$AGENT_HARNESS_CLIENTS` (default `~/.cache/agent-harness/clients`).
//!
//! A missing client skips the test with a visible message; under CI (`CI=true`) it fails it.

use std::path::PathBuf;

pub const CLAUDE_VERSION: &str = "2.1.197";
pub const GEMINI_VERSION: &str = "0.61.0";

fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGENT_HARNESS_CLIENTS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/agent-harness/clients")
}

fn find(package_dir: &str, bin: &str) -> PathBuf {
    clients_dir()
        .join(package_dir)
        .join("node_modules/.bin")
        .join(bin)
}

/// The path of a pinned client, or None (after saying so) when it is not installed and this is
/// not CI.
fn require(name: &str, path: PathBuf) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "end-to-end test needs {name} at {}; install it with scripts/install-clients",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

pub fn claude() -> Option<PathBuf> {
    require(
        &format!("claude {CLAUDE_VERSION}"),
        find(&format!("claude-{CLAUDE_VERSION}"), "claude"),
    )
}

pub fn gemini() -> Option<PathBuf> {
    require(
        &format!("gemini {GEMINI_VERSION}"),
        find(&format!("gemini-{GEMINI_VERSION}"), "gemini"),
    )
}
