//! Input from outside the harness is read bounded, in bytes and in time: a FIFO, a device or an
//! endless stream where a file or a payload is expected is refused at once with one line, never
//! waited on. Each test is named after what used to hang.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Env, fixture, stderr, stdout};

/// Long enough for a loaded machine, far below "until the client kills it".
const QUICK: Duration = Duration::from_secs(5);

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    path
}

fn with_transcript(rel: &str, transcript: &Path) -> String {
    let mut v: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    for key in ["transcript_path", "agent_transcript_path"] {
        if v.get(key).is_some() {
            v[key] = json!(transcript);
        }
    }
    v.to_string()
}

#[test]
fn a_fifo_as_transcript_path_hangs_neither_the_hooks_nor_the_status_line() {
    let env = Env::new("io-fifo-transcript");
    let fifo = fifo(env.dir.path(), "transcript.jsonl");
    let cases = [
        ("harness-user-prompt-submit", "UserPromptSubmit.json"),
        ("harness-stop", "Stop.json"),
        ("harness-session-end", "SessionEnd.json"),
        ("harness-subagent-stop", "SubagentStop.json"),
        ("harness-statusline", "statusline-api-key.json"),
    ];
    for (binary, rel) in cases {
        let input = with_transcript(&format!("claude-code-2.1.197/{rel}"), &fifo);
        let started = Instant::now();
        let out = env
            .cmd(binary)
            .write_stdin(input)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(0), "{binary}: {}", stderr(&out));
        assert!(took < QUICK, "{binary} took {took:?}");
    }
}

#[test]
fn a_fifo_or_dev_zero_as_harness_config_is_refused_at_once_in_one_line() {
    let env = Env::new("io-fifo-config");
    let fifo = fifo(env.dir.path(), "config.json");
    for config in [fifo.as_path(), Path::new("/dev/zero")] {
        let started = Instant::now();
        let out = env
            .cmd("harness-stop")
            .env("HARNESS_CONFIG", config)
            .write_stdin(fixture("claude-code-2.1.197/Stop.json"))
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert!(started.elapsed() < QUICK, "{}", config.display());
        assert_eq!(out.status.code(), Some(0));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains("using defaults"), "{err}");
        // The event is still recorded, with the defaults.
        let out = env
            .cmd("harness")
            .arg("status")
            .env("HARNESS_CONFIG", config)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_harness_config_naming_a_missing_file_says_so_instead_of_using_the_defaults() {
    let env = Env::new("io-missing-config");
    let missing = env.dir.path().join("typo/config.json");
    let out = env
        .cmd("harness-stop")
        .env("HARNESS_CONFIG", &missing)
        .write_stdin(fixture("claude-code-2.1.197/Stop.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("HARNESS_CONFIG names it, but it does not exist"),
        "{err}"
    );
    let out = env
        .cmd("harness")
        .arg("doctor")
        .env("HARNESS_CONFIG", &missing)
        .output()
        .unwrap();
    let report = stdout(&out);
    assert!(report.contains("FAIL  config"), "{report}");
    assert!(report.contains("does not exist"), "{report}");
    // /dev/null is the way to say "no file".
    let out = env
        .cmd("harness-stop")
        .env("HARNESS_CONFIG", "/dev/null")
        .write_stdin(fixture("claude-code-2.1.197/Stop.json"))
        .output()
        .unwrap();
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

/// `harness-statusline` as a plain process (to hold its stdin), in `env`.
fn statusline(env: &Env) -> Command {
    let mut cmd = Command::new(support::bin("harness-statusline"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env(
            "HARNESS_CONFIG",
            env.home.join(".config/agent-harness/config.json"),
        );
    cmd
}

#[test]
fn the_status_line_drains_a_huge_input_so_its_writer_meets_no_broken_pipe() {
    // Before: it read 4 MiB and exited, and Claude Code's write failed with EPIPE.
    let env = Env::new("io-statusline-drain");
    let mut child = statusline(&env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let huge = format!(
        "{{\"session_id\":\"s\",\"junk\":\"{}\"}}",
        "x".repeat(12 << 20)
    );
    let written = stdin.write_all(huge.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(written.is_ok(), "the writer got {written:?}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

#[test]
fn the_status_line_does_not_wait_for_an_input_that_never_ends() {
    let env = Env::new("io-statusline-open");
    let mut child = statusline(&env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open, never written to.
    let stdin = child.stdin.take().unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().count(), 1);
}
