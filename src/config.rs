//! Configuration: one JSON file plus environment overrides, with one documented field per knob.
//!
//! The file is `$HARNESS_CONFIG`, else `$XDG_CONFIG_HOME/agent-harness/config.json` (by default
//! `~/.config/agent-harness/config.json`). It is optional; every knob has a default. Unknown
//! keys are errors, so a typo is reported instead of silently ignored. Hooks that meet a broken
//! file fall back to the defaults and log why; the `harness` CLI refuses to run and says what to
//! fix. Environment variables win over the file: `HARNESS_DB` (store path).
//!
//! Owns reading and validating settings; must not act on them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::paths;

/// All settings. Every section and field is optional in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The SQLite store.
    pub store: StoreConfig,
    /// File locks across agents.
    pub locks: LocksConfig,
    /// Gemini CLI runs (`/delegate-gemini`, `harness delegate`).
    pub gemini: GeminiConfig,
}

/// `"store": {...}`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the SQLite file. Default: `$XDG_STATE_HOME/agent-harness/harness.db`
    /// (`~/.local/state/agent-harness/harness.db`). `HARNESS_DB` overrides it.
    pub path: Option<PathBuf>,
    /// How long a hook waits for another process's write lock before it gives up, records the
    /// event in the spool file instead, and lets the session go on. Default 2000 ms.
    pub busy_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            busy_timeout_ms: 2000,
        }
    }
}

/// `"locks": {...}`: an agent that writes a file takes a claim on it; another live agent's write
/// to that file is denied until the claim is released or lapses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocksConfig {
    /// Enforce claims at all. Default true. When false, writes are recorded but never denied.
    pub enabled: bool,
    /// A claim lapses this long after its holder last wrote (or tried to write) the file.
    /// Default 900 s (15 minutes): long enough to cover a run of edits to one file, short enough
    /// that a file an agent moved on from is free again soon.
    pub ttl_secs: u64,
    /// Before denying, wait up to this long for the holder's claim to lapse (only when it lapses
    /// within this time). Default 0: deny at once.
    pub wait_secs: u64,
    /// Release a session's claims when its turn ends (Stop), not only at SessionEnd. Default
    /// false: a turn often ends with the work on a file half done.
    pub release_on_stop: bool,
    /// When the lock check itself fails (store locked, corrupt, ...), deny the write instead of
    /// allowing it. Default false: allow and log.
    pub fail_closed: bool,
}

impl Default for LocksConfig {
    fn default() -> Self {
        LocksConfig {
            enabled: true,
            ttl_secs: 900,
            wait_secs: 0,
            release_on_stop: false,
            fail_closed: false,
        }
    }
}

/// `"gemini": {...}`: how the harness starts Gemini CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    /// The `gemini` program. Default: the one on PATH.
    pub binary: Option<PathBuf>,
    /// The model to ask for (`-m`). Default: none, so Gemini CLI uses its own setting (`auto`).
    pub model: Option<String>,
    /// After a quota error, one retry with this model. Default `gemini-2.5-flash`; `""` turns the
    /// retry off.
    pub fallback_model: String,
    /// A run is stopped (its whole process group) after this long. Default 600 s.
    pub timeout_secs: u64,
    /// `harness delegate` (and so `/delegate-gemini`) waits this long for the answer; a run that
    /// takes longer goes on in the background and its answer reaches the session on its next
    /// prompt or tool call. Default 90 s (Claude Code gives a slash command's shell step 120 s).
    pub wait_secs: u64,
    /// At most this many runs at once on this machine; others queue. Default 2.
    pub max_concurrent: u32,
    /// How much of Gemini's answer goes back into Claude's context, in characters (the end is
    /// kept; `harness runs show` has all that was stored). Default 6000.
    pub result_chars: usize,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            binary: None,
            model: None,
            fallback_model: "gemini-2.5-flash".into(),
            timeout_secs: 600,
            wait_secs: 90,
            max_concurrent: 2,
            result_chars: 6000,
        }
    }
}

impl Config {
    /// Where the config file is looked for.
    pub fn file_path() -> Option<PathBuf> {
        std::env::var_os("HARNESS_CONFIG")
            .map(PathBuf::from)
            .or_else(|| paths::config_home().map(|d| d.join("agent-harness/config.json")))
    }

    /// Reads the config file if it exists. A missing file is the defaults; an unreadable or
    /// invalid one is an error naming the file and the problem.
    pub fn load() -> Result<Config> {
        match Config::file_path() {
            Some(path) => Config::load_from(&path),
            None => Ok(Config::default()),
        }
    }

    pub fn load_from(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io("read config file", path, e)),
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The store's path: `HARNESS_DB`, else the config's `store.path`, else the XDG default.
    pub fn db_path(&self) -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("HARNESS_DB").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = &self.store.path {
            return Ok(p.clone());
        }
        default_db_path()
    }
}

/// `$XDG_STATE_HOME/agent-harness/harness.db`.
pub fn default_db_path() -> Result<PathBuf> {
    paths::default_state_dir()
        .map(|d| d.join("harness.db"))
        .ok_or(Error::NoStateDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("ah-config-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn missing_and_empty_files_are_defaults() {
        let c = Config::load_from(Path::new("/nonexistent/config.json")).unwrap();
        assert_eq!(c.store.busy_timeout_ms, 2000);
        let p = write("empty", "  \n");
        assert_eq!(Config::load_from(&p).unwrap().store.busy_timeout_ms, 2000);
    }

    #[test]
    fn partial_files_keep_other_defaults() {
        let p = write("partial", r#"{"store": {"busy_timeout_ms": 50}}"#);
        let c = Config::load_from(&p).unwrap();
        assert_eq!(c.store.busy_timeout_ms, 50);
        assert!(c.store.path.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_json_name_the_file_and_the_problem() {
        let p = write("typo", r#"{"store": {"busy_timeout": 50}}"#);
        let msg = Config::load_from(&p).unwrap_err().to_string();
        assert!(msg.contains(p.to_str().unwrap()), "{msg}");
        assert!(msg.contains("unknown field `busy_timeout`"), "{msg}");

        let p = write("bad", "{ nope");
        let msg = Config::load_from(&p).unwrap_err().to_string();
        assert!(msg.contains("config file"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }
}
