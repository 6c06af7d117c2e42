//! Which way Gemini CLI 0.61 will authenticate a headless run started here, and whether that way
//! still works. Owns reading `security.auth.selectedType` from Gemini's settings and judging it
//! with the environment; `harness doctor` shows the verdict. Must not start Gemini or touch the
//! network: a verdict is what the settings and the environment say, a run's own errors are the
//! final word.
//!
//! Gemini CLI 0.61 (bundle `packages/cli/src/validateNonInterActiveAuth.ts`,
//! `packages/core/src/core/contentGenerator.ts`): the auth type is `selectedType` when set, else
//! from the environment in this order: `GOOGLE_GENAI_USE_GCA=true` → `oauth-personal`,
//! `GOOGLE_GENAI_USE_VERTEXAI=true` → `vertex-ai`, `GOOGLE_GEMINI_BASE_URL` → `gateway`,
//! `GEMINI_API_KEY` → `gemini-api-key`, `CLOUD_SHELL=true` or `GEMINI_CLI_USE_COMPUTE_ADC=true`
//! → `compute-default-credentials`. So a `selectedType` of `oauth-personal` wins over a
//! `GEMINI_API_KEY` in the environment. `gemini-api-key` needs `GEMINI_API_KEY`; `vertex-ai` needs
//! `GOOGLE_CLOUD_PROJECT` and `GOOGLE_CLOUD_LOCATION`, or `GOOGLE_API_KEY`; `gateway` and
//! `cloud-shell` are refused headless ("Invalid auth method selected.", exit 41). Since
//! 2026-06-18 `oauth-personal` with a personal Google account (free, AI Pro, Ultra) is refused by
//! the server (see `runner.rs`); it still serves accounts of Gemini Code Assist Standard or
//! Enterprise, which name a Google Cloud project.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// How a run here will authenticate, and whether that works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The auth type Gemini CLI will use (`gemini-api-key`, ...), if any.
    pub auth_type: Option<String>,
    /// Where it comes from: a settings file, or `environment`.
    pub from: String,
    /// Runs will authenticate, as far as settings and environment tell.
    pub works: bool,
    /// One line for people: what is used and, when it will not work, what does.
    pub text: String,
}

/// The settings files that can set `selectedType`, lowest precedence first: the user's
/// (`$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`), the workspace's, the system overrides.
pub fn settings_files(gemini_home: Option<&Path>, cwd: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = gemini_home
        .map(|h| h.join(".gemini/settings.json"))
        .into_iter()
        .collect();
    files.push(cwd.join(".gemini/settings.json"));
    files.push(
        crate::paths::env_path("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
            .unwrap_or_else(|| PathBuf::from("/etc/gemini-cli/settings.json")),
    );
    files
}

/// `security.auth.selectedType` of one settings text, if set. Gemini allows comments in its
/// settings; a file that is not plain JSON is reported as unreadable (`Err`).
pub fn selected_type(settings: &str) -> Result<Option<String>, String> {
    if settings.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(settings).map_err(|e| format!("not plain JSON ({e})"))?;
    Ok(v.pointer("/security/auth/selectedType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

/// The selected type over `files` (the last one that sets it wins), with the file; unreadable
/// files are listed apart.
pub fn selected_in(files: &[PathBuf]) -> (Option<(String, PathBuf)>, Vec<String>) {
    let mut found = None;
    let mut problems = Vec::new();
    for f in files {
        let text = match crate::config::read_regular_file(f, 1024 * 1024) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        match selected_type(&text) {
            Ok(Some(t)) => found = Some((t, f.clone())),
            Ok(None) => {}
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    (found, problems)
}

/// The `.env` files Gemini CLI may load its variables from for a run in `cwd`, nearest first
/// (it takes the first that exists: `.gemini/.env`, then `.env`, walking up from the folder,
/// then the home's).
pub fn dotenv_files(gemini_home: Option<&Path>, cwd: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in cwd.ancestors() {
        files.push(dir.join(".gemini/.env"));
        files.push(dir.join(".env"));
    }
    if let Some(home) = gemini_home {
        files.push(home.join(".gemini/.env"));
        files.push(home.join(".env"));
    }
    files
}

/// A variable's value in the first of `files` that exists (`NAME=value` lines, optionally
/// `export`ed and quoted).
pub fn dotenv_value(files: &[PathBuf], name: &str) -> Option<String> {
    let text = files
        .iter()
        .find_map(|f| crate::config::read_regular_file(f, 1024 * 1024).ok())?;
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let value = line.strip_prefix(name)?.strip_prefix('=')?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Judges an auth type (from settings, or none) with the environment (`env` gives a variable's
/// value when set and not empty). Pure.
pub fn assess(selected: Option<(&str, &str)>, env: &dyn Fn(&str) -> Option<String>) -> Verdict {
    let set = |k: &str| env(k).is_some();
    let is_true = |k: &str| env(k).as_deref() == Some("true");
    let (auth_type, from) = match selected {
        Some((t, file)) => (Some(t.to_owned()), file.to_owned()),
        None => {
            let t = if is_true("GOOGLE_GENAI_USE_GCA") {
                Some("oauth-personal")
            } else if is_true("GOOGLE_GENAI_USE_VERTEXAI") {
                Some("vertex-ai")
            } else if set("GOOGLE_GEMINI_BASE_URL") {
                Some("gateway")
            } else if set("GEMINI_API_KEY") {
                Some("gemini-api-key")
            } else if is_true("CLOUD_SHELL") || is_true("GEMINI_CLI_USE_COMPUTE_ADC") {
                Some("compute-default-credentials")
            } else {
                None
            };
            (t.map(str::to_owned), "environment".to_owned())
        }
    };
    let what_works = "what works: GEMINI_API_KEY (an AI Studio key, free or paid) with \
                      selectedType \"gemini-api-key\", or Vertex AI (GOOGLE_GENAI_USE_VERTEXAI=true \
                      with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION, or GOOGLE_API_KEY) with \
                      selectedType \"vertex-ai\"";
    let (works, text) = match auth_type.as_deref() {
        None => (
            false,
            format!("no auth method set: runs exit 41 (auth); {what_works}"),
        ),
        Some("gemini-api-key") if set("GEMINI_API_KEY") => (
            true,
            format!("API key (gemini-api-key, from {from}): works"),
        ),
        Some("gemini-api-key") => (
            false,
            format!(
                "API key (gemini-api-key, from {from}) but GEMINI_API_KEY is not set here \
                 (Gemini also reads it from a .env file): runs exit 41 unless it is"
            ),
        ),
        Some("vertex-ai")
            if set("GOOGLE_API_KEY")
                || (set("GOOGLE_CLOUD_PROJECT") && set("GOOGLE_CLOUD_LOCATION")) =>
        {
            (true, format!("Vertex AI (vertex-ai, from {from}): works"))
        }
        Some("vertex-ai") => (
            false,
            format!(
                "Vertex AI (vertex-ai, from {from}) needs GOOGLE_CLOUD_PROJECT and \
                 GOOGLE_CLOUD_LOCATION, or GOOGLE_API_KEY: none is set here"
            ),
        ),
        Some("oauth-personal") => {
            let project = set("GOOGLE_CLOUD_PROJECT") || set("GOOGLE_CLOUD_PROJECT_ID");
            let org = if project {
                " It still serves Gemini Code Assist Standard/Enterprise (GOOGLE_CLOUD_PROJECT is \
                 set, so this may be one)."
            } else {
                ""
            };
            (
                false,
                format!(
                    "Login with Google (oauth-personal, from {from}): since 2026-06-18 Gemini CLI \
                     refuses personal Google accounts (free, AI Pro, Ultra), and a selectedType \
                     wins over GEMINI_API_KEY.{org} {what_works}"
                ),
            )
        }
        Some("compute-default-credentials") => (
            true,
            format!("Compute Engine / Cloud Shell credentials (from {from})"),
        ),
        Some(other) => (
            false,
            format!(
                "auth type {other:?} (from {from}) is refused in headless runs (\"Invalid auth \
                 method selected.\", exit 41); {what_works}"
            ),
        ),
    };
    Verdict {
        auth_type,
        from,
        works,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_auth_type_and_its_verdict_follow_gemini_cli_0_61() {
        type Case<'a> = (
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            bool,
        );
        let cases: &[Case] = &[
            (None, &[], None, false),
            (
                None,
                &[("GEMINI_API_KEY", "k")],
                Some("gemini-api-key"),
                true,
            ),
            (
                Some("gemini-api-key"),
                &[("GEMINI_API_KEY", "k")],
                Some("gemini-api-key"),
                true,
            ),
            (Some("gemini-api-key"), &[], Some("gemini-api-key"), false),
            // A selected personal login wins over a key in the environment.
            (
                Some("oauth-personal"),
                &[("GEMINI_API_KEY", "k")],
                Some("oauth-personal"),
                false,
            ),
            (
                None,
                &[("GOOGLE_GENAI_USE_GCA", "true")],
                Some("oauth-personal"),
                false,
            ),
            (
                None,
                &[
                    ("GOOGLE_GENAI_USE_VERTEXAI", "true"),
                    ("GOOGLE_API_KEY", "k"),
                ],
                Some("vertex-ai"),
                true,
            ),
            (
                Some("vertex-ai"),
                &[
                    ("GOOGLE_CLOUD_PROJECT", "p"),
                    ("GOOGLE_CLOUD_LOCATION", "us-central1"),
                ],
                Some("vertex-ai"),
                true,
            ),
            (
                Some("vertex-ai"),
                &[("GOOGLE_CLOUD_PROJECT", "p")],
                Some("vertex-ai"),
                false,
            ),
            // The base URL alone makes the type `gateway`, which headless runs refuse.
            (
                None,
                &[
                    ("GOOGLE_GEMINI_BASE_URL", "http://x"),
                    ("GEMINI_API_KEY", "k"),
                ],
                Some("gateway"),
                false,
            ),
            (Some("cloud-shell"), &[], Some("cloud-shell"), false),
        ];
        for (selected, vars, want_type, want_works) in cases {
            let v = assess(selected.map(|t| (t, "settings.json")), &env_of(vars));
            assert_eq!(v.auth_type.as_deref(), *want_type, "{selected:?} {vars:?}");
            assert_eq!(v.works, *want_works, "{selected:?} {vars:?}: {}", v.text);
        }
        let personal = assess(
            Some(("oauth-personal", "~/.gemini/settings.json")),
            &env_of(&[]),
        );
        for says in [
            "2026-06-18",
            "GEMINI_API_KEY",
            "\"gemini-api-key\"",
            "Vertex AI",
        ] {
            assert!(personal.text.contains(says), "{says}: {}", personal.text);
        }
        assert!(!personal.text.contains("Antigravity"), "no claim about it");
    }

    #[test]
    fn selected_type_is_read_from_settings_and_comments_are_reported() {
        let s = r#"{"security": {"auth": {"selectedType": "oauth-personal"}}}"#;
        assert_eq!(selected_type(s).unwrap().as_deref(), Some("oauth-personal"));
        assert_eq!(selected_type("{}").unwrap(), None);
        assert_eq!(selected_type("").unwrap(), None);
        assert!(
            selected_type("// mine\n{}")
                .unwrap_err()
                .contains("not plain JSON")
        );
    }
}
