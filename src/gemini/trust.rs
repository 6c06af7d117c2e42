//! Whether a Gemini run may treat its folder as trusted.
//!
//! Gemini CLI 0.61 refuses a headless run in a folder it does not trust (exit 55), and in a trusted
//! one loads the project's `.gemini/` settings, hooks, MCP servers and skills, which can run code.
//! The harness passes `--skip-trust` only for a folder the user already trusts with an agent:
//! Claude Code's trust dialog accepted for it or a parent (`projects[dir].hasTrustDialogAccepted`
//! in `~/.claude.json`, the walk Claude Code itself does), or Gemini's own trusted-folders rules.
//! An explicit `DO_NOT_TRUST` rule of Gemini's wins over Claude's trust. `gemini.trust_workspace`
//! in the harness config overrides all of it. Elsewhere Gemini decides, and an untrusted folder is
//! reported with the ways to trust it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a run's folder is (or is not) treated as trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// `gemini.trust_workspace: true`.
    Config,
    /// Claude Code's trust dialog was accepted for this folder (or a parent).
    Claude(PathBuf),
    /// A `TRUST_FOLDER` / `TRUST_PARENT` rule of Gemini's covers it.
    Gemini(PathBuf),
    /// `gemini.trust_workspace: false`: Gemini decides alone.
    ConfigOff,
    /// A `DO_NOT_TRUST` rule of Gemini's covers it.
    GeminiDistrusts(PathBuf),
    /// Nobody said: Gemini decides alone.
    Unknown,
}

impl Trust {
    /// Whether the run passes `--skip-trust`.
    pub fn granted(&self) -> bool {
        matches!(self, Trust::Config | Trust::Claude(_) | Trust::Gemini(_))
    }
}

/// Where the clients keep what they trust.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Claude Code's global config (`$CLAUDE_CONFIG_DIR/.claude.json`, else `~/.claude.json`).
    pub claude_json: PathBuf,
    /// Gemini's rules (`$GEMINI_CLI_TRUSTED_FOLDERS_PATH`, else
    /// `$GEMINI_CLI_HOME/.gemini/trustedFolders.json`, else `~/.gemini/trustedFolders.json`).
    pub gemini_folders: PathBuf,
}

impl Sources {
    /// The clients' own locations, from the environment.
    pub fn from_env() -> Option<Sources> {
        use crate::paths::{env_path, gemini_home, home};
        // `.claude.json` sits in `$CLAUDE_CONFIG_DIR` or in the home itself (not in ~/.claude).
        let claude_dir = env_path("CLAUDE_CONFIG_DIR").or_else(home)?;
        let gemini_folders = env_path("GEMINI_CLI_TRUSTED_FOLDERS_PATH")
            .or_else(|| gemini_home().map(|h| h.join(".gemini/trustedFolders.json")))?;
        Some(Sources {
            claude_json: claude_dir.join(".claude.json"),
            gemini_folders,
        })
    }
}

/// Decides for a run in `cwd` (absolute). Unreadable or malformed files count as saying nothing.
pub fn decide(cwd: &Path, setting: Option<bool>, sources: Option<&Sources>) -> Trust {
    match setting {
        Some(true) => return Trust::Config,
        Some(false) => return Trust::ConfigOff,
        None => {}
    }
    let Some(sources) = sources else {
        return Trust::Unknown;
    };
    let real = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    match gemini_rule(&sources.gemini_folders, &real) {
        Some((false, rule)) => return Trust::GeminiDistrusts(rule),
        Some((true, rule)) => return Trust::Gemini(rule),
        None => {}
    }
    match claude_trusted(&sources.claude_json, cwd, &real) {
        Some(dir) => Trust::Claude(dir),
        None => Trust::Unknown,
    }
}

#[derive(Deserialize)]
struct ClaudeJson {
    #[serde(default)]
    projects: HashMap<String, ClaudeProject>,
}

#[derive(Deserialize)]
struct ClaudeProject {
    #[serde(default, rename = "hasTrustDialogAccepted")]
    trusted: Option<bool>,
}

/// The folder (`cwd`, its real path, or a parent of either) whose Claude Code trust was accepted.
fn claude_trusted(file: &Path, cwd: &Path, real: &Path) -> Option<PathBuf> {
    let text = std::fs::read(file).ok()?;
    let parsed: ClaudeJson = serde_json::from_slice(&text).ok()?;
    let trusted = |p: &Path| {
        p.to_str()
            .and_then(|k| parsed.projects.get(k))
            .is_some_and(|e| e.trusted == Some(true))
    };
    [cwd, real]
        .iter()
        .flat_map(|start| start.ancestors())
        .find(|p| trusted(p))
        .map(Path::to_path_buf)
}

/// Gemini's verdict for `real`: the longest rule whose folder contains it (`TRUST_PARENT` rules
/// cover their parent), as (trusted, rule path).
fn gemini_rule(file: &Path, real: &Path) -> Option<(bool, PathBuf)> {
    let text = std::fs::read(file).ok()?;
    let rules: HashMap<String, String> = serde_json::from_slice(&text).ok()?;
    rules
        .iter()
        .filter_map(|(rule, level)| {
            let rule_path = Path::new(rule);
            let covered = match level.as_str() {
                "TRUST_PARENT" => rule_path.parent()?,
                "TRUST_FOLDER" | "DO_NOT_TRUST" => rule_path,
                _ => return None,
            };
            let covered = std::fs::canonicalize(covered).unwrap_or_else(|_| covered.into());
            real.starts_with(&covered)
                .then(|| (rule.len(), level != "DO_NOT_TRUST", rule_path.to_path_buf()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, trusted, rule)| (trusted, rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(label: &str) -> (Dir, Sources, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "agent-harness-trust-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let project = root.join("work/project/src");
        std::fs::create_dir_all(&project).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let sources = Sources {
            claude_json: root.join("claude.json"),
            gemini_folders: root.join("trustedFolders.json"),
        };
        (Dir(root.clone()), sources, root)
    }

    fn claude(sources: &Sources, dir: &Path, accepted: bool) {
        let v = json!({"numStartups": 3, "projects": {
            dir.to_str().unwrap(): {"hasTrustDialogAccepted": accepted, "allowedTools": []}
        }});
        std::fs::write(&sources.claude_json, v.to_string()).unwrap();
    }

    fn gemini(sources: &Sources, rules: serde_json::Value) {
        std::fs::write(&sources.gemini_folders, rules.to_string()).unwrap();
    }

    #[test]
    fn claude_trust_covers_the_folder_and_its_children() {
        let (_d, s, root) = scratch("claude");
        let cwd = root.join("work/project/src");
        assert_eq!(decide(&cwd, None, Some(&s)), Trust::Unknown);
        claude(&s, &root.join("work/project"), true);
        assert_eq!(
            decide(&cwd, None, Some(&s)),
            Trust::Claude(root.join("work/project"))
        );
        assert!(decide(&cwd, None, Some(&s)).granted());
        // Declined, or someone else's folder: nothing.
        claude(&s, &root.join("work/project"), false);
        assert_eq!(decide(&cwd, None, Some(&s)), Trust::Unknown);
        claude(&s, &root.join("work/project/src/deeper"), true);
        assert_eq!(decide(&cwd, None, Some(&s)), Trust::Unknown);
        // A malformed file says nothing.
        std::fs::write(&s.claude_json, "{not json").unwrap();
        assert_eq!(decide(&cwd, None, Some(&s)), Trust::Unknown);
    }

    #[test]
    fn gemini_rules_take_the_longest_match_and_a_distrust_wins() {
        let (_d, s, root) = scratch("gemini");
        let cwd = root.join("work/project/src");
        let project = root.join("work/project");
        claude(&s, &project, true);
        gemini(&s, json!({project.to_str().unwrap(): "DO_NOT_TRUST"}));
        assert_eq!(
            decide(&cwd, None, Some(&s)),
            Trust::GeminiDistrusts(project.clone())
        );
        assert!(!decide(&cwd, None, Some(&s)).granted());
        // A longer rule wins; TRUST_PARENT covers the rule's parent.
        gemini(
            &s,
            json!({
                root.join("work").to_str().unwrap(): "DO_NOT_TRUST",
                project.join("src/x").to_str().unwrap(): "TRUST_PARENT",
            }),
        );
        assert_eq!(
            decide(&cwd, None, Some(&s)),
            Trust::Gemini(project.join("src/x"))
        );
        // The config overrides both ways.
        assert_eq!(decide(&cwd, Some(true), Some(&s)), Trust::Config);
        assert_eq!(decide(&cwd, Some(false), Some(&s)), Trust::ConfigOff);
        assert!(!Trust::ConfigOff.granted());
    }
}
