//! Running the real `claude` against the mock Anthropic API, in a hermetic HOME, in a project
//! where the harness was installed the way a user installs it (`harness install`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use agent_harness::store::query::{self, EventFilter, EventRow};
use serde_json::{Value, json};

use super::Env;
use super::clients::Claude;

/// The output of one client run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Run {
    /// stream-json lines.
    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The session id from the first line that carries one.
    pub fn session_id(&self) -> Option<String> {
        self.lines()
            .iter()
            .find_map(|l| l["session_id"].as_str().map(str::to_owned))
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {:?}{}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Waits for a child with a deadline, collecting its output; kills its process group on timeout.
pub fn wait(mut child: Child, timeout: Duration) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            // The child leads its own process group: end it all.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    Run {
        code: status.code(),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
        timed_out,
    }
}

/// A hermetic Claude Code set-up: HOME, a trusted git project with the harness installed, a store.
pub struct ClaudeEnv {
    pub env: Env,
    pub project: PathBuf,
    pub claude: PathBuf,
    /// The Claude Code release `claude` is.
    pub version: String,
    pub api_url: String,
    /// More environment for the `claude` process (and so for its shell steps).
    pub extra_env: Vec<(String, String)>,
}

impl ClaudeEnv {
    pub fn new(label: &str, claude: &Claude, api_url: String) -> ClaudeEnv {
        let env = Env::new(&format!("{label}-{}", claude.version));
        let project = env.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&project)
            .status()
            .unwrap();
        assert!(git.success());
        let project = std::fs::canonicalize(&project).unwrap();
        std::fs::write(
            env.home.join(".claude.json"),
            json!({
                "hasCompletedOnboarding": true,
                "lastOnboardingVersion": claude.version,
                "numStartups": 1,
                "autoUpdates": false,
                "projects": {project.to_str().unwrap(): {
                    "hasTrustDialogAccepted": true,
                    "hasCompletedProjectOnboarding": true,
                    "allowedTools": []
                }}
            })
            .to_string(),
        )
        .unwrap();
        let cenv = ClaudeEnv {
            env,
            project,
            claude: claude.path.clone(),
            version: claude.version.clone(),
            api_url,
            extra_env: Vec::new(),
        };
        cenv.install_harness();
        cenv
    }

    /// `harness install` into the project, with the freshly built hook binaries.
    fn install_harness(&self) {
        self.env
            .install(&["--project".as_ref(), self.project.as_os_str()]);
    }

    /// A `claude` command with the hermetic environment, run in `dir`, in its own process group.
    pub fn command(&self, dir: &Path) -> Command {
        self.command_against(dir, &self.api_url)
    }

    /// The same, against another API URL.
    pub fn command_against(&self, dir: &Path, api_url: &str) -> Command {
        let mut cmd = self.env.client(&self.claude, dir);
        cmd.env("USER", "dev")
            .env("ANTHROPIC_BASE_URL", api_url)
            .env("ANTHROPIC_API_KEY", "sk-ant-test-e2e-key")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("CLAUDE_CODE_MAX_RETRIES", "0")
            .env("IS_SANDBOX", "1");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The recorded events (oldest first) once `done` says they are complete, or what is there at
    /// a deadline. Hooks that run async (SubagentStop, PostCompact, ...) and even SessionEnd may
    /// still be running when `claude -p` has exited.
    pub fn events_when(&self, done: impl Fn(&[EventRow]) -> bool) -> Vec<EventRow> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = if self.env.db.exists() {
                query::events(&self.env.db(), &EventFilter::default(), 10_000).unwrap_or_default()
            } else {
                Vec::new()
            };
            if done(&rows) || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `claude -p <prompt>` in the project with stream-json output and permissions bypassed.
    pub fn run(&self, prompt: &str, extra: &[&str]) -> Run {
        self.run_against(&self.api_url, prompt, extra)
    }

    /// The same, against another API URL.
    pub fn run_against(&self, api_url: &str, prompt: &str, extra: &[&str]) -> Run {
        self.run_in_mode(api_url, "bypassPermissions", prompt, extra)
    }

    /// `claude -p <prompt>` in a permission mode (`default` asks, and headless that refuses
    /// whatever is not allowed with `--allowedTools`).
    pub fn run_in_mode(&self, api_url: &str, mode: &str, prompt: &str, extra: &[&str]) -> Run {
        let mut cmd = self.command_against(&self.project, api_url);
        cmd.args(["-p", prompt, "--output-format", "stream-json", "--verbose"])
            .args(["--permission-mode", mode])
            .args(extra);
        wait(cmd.spawn().unwrap(), Duration::from_secs(120))
    }
}
