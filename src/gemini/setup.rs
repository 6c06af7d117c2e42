//! The files a Gemini CLI run is started with, kept in the harness's state directory (0700):
//!
//! - a policy file per mode (`--policy`): Gemini CLI's headless `exit_plan_mode` switches the
//!   session to YOLO, so a model could escalate itself from read-only to writing and running
//!   commands; both policies deny `enter_plan_mode` and `exit_plan_mode`, the read-only one also
//!   every tool that writes or runs something. User tier, priority 999: above every built-in rule.
//! - a Gemini home for the run (`GEMINI_CLI_HOME`) that registers the harness's hooks, so the run
//!   is recorded and its edits obey the file locks without touching the user's or the project's
//!   settings. Gemini CLI 0.61 takes extra settings for one process only from system files, and
//!   loads those only when the file and every directory above it are owned by root and writable by
//!   no one else: useless to an ordinary user. So the run gets its own `.gemini` directory whose
//!   entries are symlinks to the user's (login, extensions, history, trusted folders: all as
//!   they are), except `settings.json`: the user's settings with the harness hooks merged in.
//!   Skipped when the user's or the workspace's settings already carry the hooks (`harness install
//!   --gemini`), which would otherwise run twice.

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

/// The Gemini settings files that apply to a run in `cwd` for a user whose Gemini home is
/// `user_home`: the user's and the workspace's (Gemini reads `<cwd>/.gemini/settings.json`, in a
/// trusted folder).
fn settings_files_for(user_home: Option<&Path>, cwd: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = user_home
        .map(|h| h.join(".gemini/settings.json"))
        .into_iter()
        .collect();
    files.push(cwd.join(".gemini/settings.json"));
    files
}

/// The settings file that puts a run in `cwd` under the file locks, if any does.
pub fn lock_hooks_in(cwd: &Path) -> Option<PathBuf> {
    lock_hooks_for(crate::paths::gemini_home().as_deref(), cwd)
}

fn lock_hooks_for(user_home: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    settings_files_for(user_home, cwd)
        .into_iter()
        .find(|f| has_lock_hook(f))
}

/// Builds the Gemini home for one run in `home` (see the module docs): `home/.gemini/` mirrors the
/// user's Gemini directory entry by entry, with `settings.json` carrying the harness hooks
/// (commands in `bin_dir`, or bare names found on PATH when None). Returns false (and builds
/// nothing) when the user's or the workspace's settings carry the hooks already. Fails when the user's settings cannot be
/// read as JSON (then merging into them would drop them).
pub fn hooks_home(home: &Path, cwd: &Path, bin_dir: Option<&Path>) -> std::io::Result<bool> {
    build_hooks_home(home, cwd, bin_dir, crate::paths::gemini_home().as_deref())
}

fn build_hooks_home(
    home: &Path,
    cwd: &Path,
    bin_dir: Option<&Path>,
    user_home: Option<&Path>,
) -> std::io::Result<bool> {
    use std::os::unix::fs::DirBuilderExt;
    if lock_hooks_for(user_home, cwd).is_some() {
        return Ok(false);
    }
    let gemini = home.join(".gemini");
    let _ = std::fs::remove_dir_all(home);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&gemini)?;
    // Gemini also reads `<home>/.env` (API keys live there for some users).
    if let Some(env) = user_home.map(|h| h.join(".env"))
        && env.exists()
    {
        std::os::unix::fs::symlink(&env, home.join(".env"))?;
    }
    let mut settings = Value::Object(Default::default());
    if let Some(user) = user_home.map(|h| h.join(".gemini"))
        && let Ok(entries) = std::fs::read_dir(&user)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == "settings.json" {
                let text = std::fs::read_to_string(entry.path())?;
                settings = serde_json::from_str(&text).map_err(|e| {
                    std::io::Error::other(format!(
                        "{} is not plain JSON ({e}): cannot add the harness hooks for the run",
                        entry.path().display()
                    ))
                })?;
            } else {
                std::os::unix::fs::symlink(entry.path(), gemini.join(&name))?;
            }
        }
    }
    let hooks = install::client_hooks(install::Client::Gemini, &|name| match bin_dir {
        Some(d) => crate::shell::quote(&d.join(name).to_string_lossy()),
        None => name.to_owned(),
    });
    install::merge(&mut settings, &hooks).map_err(|e| {
        std::io::Error::other(format!(
            "cannot add the harness hooks to the user's Gemini settings for the run: {e}"
        ))
    })?;
    write_private(&gemini.join("settings.json"), &format!("{settings:#}\n"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_home_mirrors_the_users_and_adds_the_hooks_to_their_settings() {
        let root = std::env::temp_dir().join(format!("ah-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let user = root.join("user");
        let cwd = root.join("project");
        std::fs::create_dir_all(user.join(".gemini/extensions/x")).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(user.join(".env"), "GEMINI_API_KEY=k\n").unwrap();
        std::fs::write(user.join(".gemini/oauth_creds.json"), "{}").unwrap();
        let users_settings = r#"{"security": {"auth": {"selectedType": "oauth-personal"}},
            "hooks": {"BeforeTool": [{"hooks": [{"type": "command", "command": "mine"}]}]}}"#;
        std::fs::write(user.join(".gemini/settings.json"), users_settings).unwrap();
        let home = root.join("run-home");
        assert!(build_hooks_home(&home, &cwd, Some(Path::new("/opt/bin")), Some(&user)).unwrap());
        let g = home.join(".gemini");
        for name in ["oauth_creds.json", "extensions"] {
            assert_eq!(
                std::fs::read_link(g.join(name)).unwrap(),
                user.join(".gemini").join(name)
            );
        }
        assert_eq!(
            std::fs::read_link(home.join(".env")).unwrap(),
            user.join(".env")
        );
        let merged: Value =
            serde_json::from_str(&std::fs::read_to_string(g.join("settings.json")).unwrap())
                .unwrap();
        assert_eq!(merged["security"]["auth"]["selectedType"], "oauth-personal");
        let before = merged["hooks"]["BeforeTool"].to_string();
        assert!(before.contains("\"mine\""), "{before}");
        assert!(before.contains("/opt/bin/harness-pre-tool-use"), "{before}");
        assert!(has_lock_hook(&g.join("settings.json")));
        // The user's own file is untouched.
        let users = std::fs::read_to_string(user.join(".gemini/settings.json")).unwrap();
        assert_eq!(users, users_settings);
        // Hooks in the user's settings already: no home is needed.
        std::fs::copy(g.join("settings.json"), user.join(".gemini/settings.json")).unwrap();
        assert!(!build_hooks_home(&root.join("h2"), &cwd, None, Some(&user)).unwrap());
        // Settings that are not plain JSON (comments) are not merged into, and say so.
        std::fs::write(user.join(".gemini/settings.json"), "// mine\n{}").unwrap();
        let err = build_hooks_home(&root.join("h3"), &cwd, None, Some(&user)).unwrap_err();
        assert!(err.to_string().contains("not plain JSON"), "{err}");
        // No Gemini directory at all (an API key in the environment): settings with the hooks.
        assert!(build_hooks_home(&root.join("h4"), &cwd, None, Some(&root.join("none"))).unwrap());
        let _ = std::fs::remove_dir_all(&root);
    }

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
