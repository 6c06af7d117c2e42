//! The real clients for end-to-end tests: `@anthropic-ai/claude-code` at the pinned 2.1.197 and
//! the newest release we know of, 2.1.332 (both by default; `AGENT_HARNESS_CLAUDE_VERSIONS`, a
//! comma-separated list, picks others), and `@google/gemini-cli@0.61.0`, installed from the npm
//! registry by `scripts/install-clients` into `$AGENT_HARNESS_CLIENTS` (default
//! `~/.cache/agent-harness/clients`).
//!
//! A missing client skips the test with a visible message; under CI (`CI=true`) it fails it.

use std::path::PathBuf;

/// The Claude Code releases the end-to-end tests run on by default: the pinned one and the newest.
pub const CLAUDE_VERSIONS: &[&str] = &["2.1.197", "2.1.332"];
pub const GEMINI_VERSION: &str = "0.61.0";

/// One installed Claude Code release.
#[derive(Debug, Clone)]
pub struct Claude {
    pub version: String,
    pub path: PathBuf,
}

impl Claude {
    /// True from `major.minor.patch` on (a version that does not parse counts as newest).
    pub fn at_least(&self, want: &str) -> bool {
        let parse =
            |v: &str| -> Option<Vec<u32>> { v.split('.').map(|p| p.parse().ok()).collect() };
        match (parse(&self.version), parse(want)) {
            (Some(have), Some(want)) => have >= want,
            _ => true,
        }
    }
}

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

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The path of a client, or None (after saying so) when it is not installed and this is not CI.
fn require(name: &str, path: PathBuf) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "end-to-end test needs {name} at {}; install it with scripts/install-clients",
        path.display()
    );
    if under_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The Claude Code versions to test: `AGENT_HARNESS_CLAUDE_VERSIONS`, else [`CLAUDE_VERSIONS`].
pub fn claude_versions() -> Vec<String> {
    match std::env::var("AGENT_HARNESS_CLAUDE_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => CLAUDE_VERSIONS.iter().map(|v| v.to_string()).collect(),
    }
}

/// Every Claude Code release to test that is installed (each missing one is said, or under CI
/// fails the test).
pub fn claudes() -> Vec<Claude> {
    claude_versions()
        .into_iter()
        .filter_map(|version| {
            let path = require(
                &format!("claude {version}"),
                find(&format!("claude-{version}"), "claude"),
            )?;
            Some(Claude { version, path })
        })
        .collect()
}

/// Runs `test` once per Claude Code release to test, each to its end even when another failed;
/// then fails, naming the releases it failed on.
pub fn each_claude(test: impl Fn(&Claude)) {
    let mut failed = Vec::new();
    for claude in claudes() {
        eprintln!("--- on claude {}", claude.version);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&claude)));
        if run.is_err() {
            eprintln!("--- FAILED on claude {}", claude.version);
            failed.push(claude.version.clone());
        }
    }
    assert!(failed.is_empty(), "failed on claude {}", failed.join(", "));
}

pub fn gemini() -> Option<PathBuf> {
    require(
        &format!("gemini {GEMINI_VERSION}"),
        find(&format!("gemini-{GEMINI_VERSION}"), "gemini"),
    )
}
