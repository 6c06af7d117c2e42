//! The files a Gemini CLI run is started with, kept in the harness's state directory (0700):
//!
//! - a policy file per mode (`--policy`): Gemini CLI's headless `exit_plan_mode` switches the
//!   session to YOLO, so a model could escalate itself from read-only to writing and running
//!   commands; both policies deny `enter_plan_mode` and `exit_plan_mode`, the read-only one also
//!   every tool that writes or runs something. User tier, priority 999: above every built-in rule.
//!
//! And where a run's hooks come from. Gemini CLI 0.61 loads system settings files (the only
//! per-process way to add hooks: `GEMINI_CLI_SYSTEM_DEFAULTS_PATH`) only when the file and every
//! directory above it are owned by root and writable by no one else, so for an ordinary user a
//! run cannot bring its own hooks. A run's edits obey the file locks through the harness hooks in
//! Gemini's own settings (`harness install --gemini --user`, or the project's); a write run
//! refuses to start without them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::install;

/// What a run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read and answer; no writes, no shell (`--approval-mode default` and the read-only policy).
    ReadOnly,
    /// Edit files in the workspace, no shell (`--approval-mode auto_edit` and the write policy),
    /// under the harness's file locks.
    Write,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::Write => "write",
        }
    }

    pub fn approval_mode(self) -> &'static str {
        match self {
            Mode::ReadOnly => "default",
            Mode::Write => "auto_edit",
        }
    }
}

/// Tools denied in read-only runs: the writers, the shell, and the plan-mode pair that leads to
/// YOLO (reference: gemini-cli.md section 4).
const READ_ONLY_DENY: &[&str] = &[
    "enter_plan_mode",
    "exit_plan_mode",
    "write_file",
    "replace",
    "run_shell_command",
    "activate_skill",
    "web_fetch",
];

/// Tools denied in write runs: the shell and the escalation path.
const WRITE_DENY: &[&str] = &[
    "enter_plan_mode",
    "exit_plan_mode",
    "run_shell_command",
    "activate_skill",
];

/// The policy file's text for a mode.
pub fn policy_text(mode: Mode) -> String {
    let tools = match mode {
        Mode::ReadOnly => READ_ONLY_DENY,
        Mode::Write => WRITE_DENY,
    };
    let list: Vec<String> = tools.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "# Written by agent-harness for Gemini CLI runs it starts ({} mode). Do not edit: it is \
         rewritten before every run.\n[[rule]]\ntoolName = [{}]\ndecision = \"deny\"\npriority = \
         999\ndenyMessage = \"agent-harness started this run {}: this tool is not allowed\"\n",
        mode.as_str(),
        list.join(", "),
        mode.as_str()
    )
}

/// Writes `text` to `path` (0600) unless it already holds exactly that.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?
        .write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// Writes the policy file for `mode` in `dir`; returns its path.
pub fn policy_file(dir: &Path, mode: Mode) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("policy-{}.toml", mode.as_str()));
    write_private(&path, &policy_text(mode))?;
    Ok(path)
}

/// True when a Gemini settings file runs the harness's lock check before tools
/// (`hooks.BeforeTool` holds `harness-pre-tool-use`).
fn has_lock_hook(settings: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(settings) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return false;
    };
    v.pointer("/hooks/BeforeTool")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("hooks").and_then(Value::as_array))
        .flatten()
        .any(|h| install::command_program(h) == Some("harness-pre-tool-use"))
}

/// The Gemini settings files that apply to a run in `cwd`: the user's and the workspace's
/// (Gemini reads `<cwd>/.gemini/settings.json`, in a trusted folder).
pub fn settings_files(cwd: &Path) -> Vec<PathBuf> {
    let user_dir = std::env::var_os("GEMINI_CLI_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(crate::paths::home);
    let mut files: Vec<PathBuf> = user_dir
        .map(|h| h.join(".gemini/settings.json"))
        .into_iter()
        .collect();
    files.push(cwd.join(".gemini/settings.json"));
    files
}

/// The settings file that puts a run in `cwd` under the file locks, if any does.
pub fn lock_hooks_in(cwd: &Path) -> Option<PathBuf> {
    settings_files(cwd).into_iter().find(|f| has_lock_hook(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_policies_deny_the_escalation_path() {
        for mode in [Mode::ReadOnly, Mode::Write] {
            let text = policy_text(mode);
            assert!(
                text.contains("\"enter_plan_mode\", \"exit_plan_mode\""),
                "{text}"
            );
            assert!(text.contains("priority = 999"));
        }
        assert!(policy_text(Mode::ReadOnly).contains("\"write_file\""));
        assert!(!policy_text(Mode::Write).contains("\"write_file\""));
        assert!(policy_text(Mode::Write).contains("\"run_shell_command\""));
    }
}
