//! Test support: a hermetic environment per test (its own HOME, store and config), runners for
//! the built binaries, and the recorded fixtures.
#![allow(dead_code)]

pub mod anthropic;
pub mod browser;
pub mod claude;
pub mod clients;
pub mod gemini;
pub mod gemini_cli;
pub mod http;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use rusqlite::Connection;

/// Requests a mock model server saw, as one text to search (each body's JSON on its own line).
pub fn joined(bodies: &[serde_json::Value]) -> String {
    bodies
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // Under target/tmp, not /tmp: Gemini CLI refuses settings files below a world-writable
        // directory.
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(format!("ah-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("AH_KEEP_TEMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Path of a built binary of this package.
pub fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// PATH with the freshly built binaries first, as after `cargo install`: what Claude Code's
/// shell steps (`!` in slash commands) find as `harness`.
pub fn path_with_bins() -> std::ffi::OsString {
    let bins = bin("harness").parent().unwrap().to_path_buf();
    let mut parts = vec![bins];
    parts.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(parts).unwrap()
}

/// The bytes of a recorded fixture, e.g. `claude-code-2.1.197/PreToolUse-Edit.json`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// All fixtures of one client, as (file name, bytes).
pub fn fixtures(client_dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(client_dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The hook binary Claude Code runs for an event.
pub fn binary_for(event: &str) -> &'static str {
    match event {
        "SessionStart" => "harness-session-start",
        "UserPromptSubmit" | "BeforeAgent" => "harness-user-prompt-submit",
        "UserPromptExpansion" => "harness-user-prompt-expansion",
        "PreToolUse" | "BeforeTool" => "harness-pre-tool-use",
        "PostToolUse" | "AfterTool" => "harness-post-tool-use",
        "PostToolUseFailure" => "harness-post-tool-use-failure",
        "Stop" | "AfterAgent" => "harness-stop",
        "StopFailure" => "harness-stop-failure",
        "SubagentStart" => "harness-subagent-start",
        "SubagentStop" => "harness-subagent-stop",
        "PreCompact" | "PreCompress" => "harness-pre-compact",
        "PostCompact" => "harness-post-compact",
        "Notification" => "harness-notification",
        "SessionEnd" => "harness-session-end",
        "PreSkillShellCommand" => "harness-pre-skill-shell-command",
        "PreModelSwitch" => "harness-pre-model-switch",
        "PostModelSwitch" => "harness-post-model-switch",
        "DirectoryAdded" => "harness-directory-added",
        "PermissionRequest" => "harness-permission-request",
        "PermissionDenied" => "harness-permission-denied",
        other => panic!("no binary for {other}"),
    }
}

/// A hermetic environment: HOME, XDG dirs, store and config all under one temp dir.
pub struct Env {
    pub dir: TempDir,
    pub home: PathBuf,
    pub db: PathBuf,
}

impl Env {
    pub fn new(label: &str) -> Env {
        let dir = TempDir::new(label);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let db = dir.path().join("state/harness.db");
        // `HARNESS_CONFIG` names this file, and a named file must exist: empty is the defaults.
        let config = home.join(".config/agent-harness/config.json");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "").unwrap();
        Env { dir, home, db }
    }

    /// The log the hooks write beside the store.
    pub fn log(&self) -> PathBuf {
        self.db.with_extension("log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// A command for one of the package's binaries with a clean environment.
    pub fn cmd(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        self.apply(cmd.env_clear());
        cmd
    }

    /// The variables that make a command see this environment: PATH as the test's, HOME, the
    /// store, the config file and the XDG dirs under HOME.
    fn vars(&self) -> [(&'static str, std::ffi::OsString); 6] {
        [
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
            ("HOME", self.home.clone().into()),
            ("HARNESS_DB", self.db.clone().into()),
            (
                "HARNESS_CONFIG",
                self.home.join(".config/agent-harness/config.json").into(),
            ),
            ("XDG_STATE_HOME", self.home.join(".local/state").into()),
            ("XDG_CONFIG_HOME", self.home.join(".config").into()),
        ]
    }

    /// Applies this environment to any command.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.envs(self.vars())
    }

    /// Applies this environment to a `std::process::Command` (for a long-running child).
    pub fn apply_std<'a>(
        &self,
        cmd: &'a mut std::process::Command,
    ) -> &'a mut std::process::Command {
        cmd.envs(self.vars())
    }

    /// A real client (`claude`, `gemini`) run in `dir` with only this environment: HOME, the
    /// store, PATH with the freshly built binaries first; no stdin, output captured, in its own
    /// process group (so that a timeout can end all of it).
    pub fn client(&self, program: &Path, dir: &Path) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear()
            .env("PATH", path_with_bins())
            .env("HOME", &self.home)
            .env("TERM", "dumb")
            .env("HARNESS_DB", &self.db)
            .env(
                "HARNESS_CONFIG",
                self.home.join(".config/agent-harness/config.json"),
            )
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        cmd
    }

    /// `harness install <args> --bin-dir <the built binaries>` the way a user runs it; asserts
    /// that it succeeded.
    pub fn install(&self, args: &[&std::ffi::OsStr]) {
        let out = self
            .cmd("harness")
            .arg("install")
            .args(args)
            .arg("--bin-dir")
            .arg(bin("harness").parent().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "harness install {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a hook binary with `stdin`.
    pub fn hook(&self, name: &str, stdin: impl Into<Vec<u8>>) -> Output {
        self.cmd(name).write_stdin(stdin).output().unwrap()
    }

    /// Writes the config file.
    pub fn config(&self, json: &str) {
        let path = self.home.join(".config/agent-harness/config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, json).unwrap();
    }

    /// A read connection to the store.
    pub fn db(&self) -> Connection {
        Connection::open(&self.db).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// `count(sql)` once it equals `want`, or what it is after 20 s: a client's async hooks can
    /// still be running when the client exits.
    pub fn count_when(&self, sql: &str, want: i64) -> i64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let n = self.count(sql);
            if n == want || std::time::Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Asserts the fail-open contract: exit 0, nothing on stdout, one stderr line naming the harness.
pub fn assert_failed_open(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit code; stderr: {}",
        stderr(out)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one stderr line, got: {err:?}");
    assert!(err.starts_with("agent-harness: "), "{err}");
    err
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
