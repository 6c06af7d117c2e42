//! Running the real `gemini` against the mock Gemini API, in a hermetic HOME, in a project whose
//! `.gemini/settings.json` carries the harness hooks (`harness install --gemini`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::Env;
use super::claude::{Run, wait};

/// A Gemini CLI set-up on an environment (HOME and store) and a project.
pub struct Gemini<'a> {
    pub env: &'a Env,
    pub project: PathBuf,
    pub gemini: PathBuf,
    pub api_url: String,
}

/// `harness install --gemini --user`: the harness hooks in `~/.gemini/settings.json`, as a user
/// does once so that Gemini sessions (and write runs) obey the file locks.
#[allow(dead_code)]
pub fn install_user_hooks(env: &Env) {
    env.install(&["--gemini".as_ref(), "--user".as_ref()]);
}

/// Trusts `project` the way Gemini CLI records it when the user answers its trust dialog.
#[allow(dead_code)]
pub fn trust_folder(env: &Env, project: &Path) {
    let file = env.home.join(".gemini/trustedFolders.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        file,
        json!({project.to_str().unwrap(): "TRUST_FOLDER"}).to_string(),
    )
    .unwrap();
}

impl<'a> Gemini<'a> {
    /// Writes the user settings (API-key auth pinned, as `GOOGLE_GEMINI_BASE_URL` needs) and
    /// installs the harness hooks into the project the way a user does.
    pub fn setup(env: &'a Env, project: &Path, gemini: PathBuf, api_url: String) -> Gemini<'a> {
        let settings = env.home.join(".gemini/settings.json");
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(
            &settings,
            json!({
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "general": {"maxAttempts": 1, "plan": {"enabled": false}},
                "privacy": {"usageStatisticsEnabled": false},
                "telemetry": {"enabled": false},
                "model": {"maxSessionTurns": 20}
            })
            .to_string(),
        )
        .unwrap();
        env.install(&[
            "--gemini".as_ref(),
            "--project".as_ref(),
            project.as_os_str(),
        ]);
        Gemini {
            env,
            project: project.to_path_buf(),
            gemini,
            api_url,
        }
    }

    /// A `gemini` command in `dir`, in its own process group. The workspace is trusted through
    /// `GEMINI_CLI_TRUST_WORKSPACE`: in 0.61.0 `--skip-trust` alone does not load the project's
    /// settings, and so not its hooks.
    pub fn command(&self, dir: &Path) -> Command {
        let mut cmd = self.env.client(&self.gemini, dir);
        cmd.env("NO_COLOR", "1")
            .env("GOOGLE_GEMINI_BASE_URL", &self.api_url)
            .env("GEMINI_API_KEY", "fake-e2e-key")
            .env("GEMINI_CLI_NO_RELAUNCH", "true")
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true");
        cmd
    }

    /// `gemini -p <prompt> -o stream-json` in the project, edits allowed.
    pub fn run(&self, prompt: &str) -> Run {
        let mut cmd = self.command(&self.project);
        cmd.args(["-p", prompt, "-o", "stream-json", "--skip-trust"])
            .args(["--approval-mode", "auto_edit", "-m", "gemini-2.5-flash"]);
        wait(cmd.spawn().unwrap(), Duration::from_secs(120))
    }
}
