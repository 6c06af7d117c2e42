//! The `harness` CLI over a store filled by the hook binaries.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Env, fixture, stderr, stdout};

fn filled() -> Env {
    let env = Env::new("cli");
    for (bin, rel) in [
        (
            "harness-session-start",
            "claude-code-2.1.197/SessionStart-startup.json",
        ),
        (
            "harness-pre-tool-use",
            "claude-code-2.1.197/PreToolUse-Edit.json",
        ),
        (
            "harness-post-tool-use",
            "claude-code-2.1.197/PostToolUse-Edit.json",
        ),
        (
            "harness-pre-tool-use",
            "claude-code-2.1.197/PreToolUse-Bash.json",
        ),
        (
            "harness-session-start",
            "gemini-cli-0.61.0/SessionStart-startup.json",
        ),
        (
            "harness-pre-tool-use",
            "gemini-cli-0.61.0/BeforeTool-write_file.json",
        ),
    ] {
        let out = env.hook(bin, fixture(rel));
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
    }
    env
}

fn harness(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.cmd("harness").args(args).output().unwrap();
    (out.status.code().unwrap(), stdout(&out), stderr(&out))
}

#[test]
fn events_lists_filters_and_prints_json() {
    let env = filled();
    let (code, out, _) = harness(&env, &["events"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.contains("PreToolUse") && out.contains("BeforeTool"),
        "{out}"
    );
    assert!(out.contains("/home/dev/project/hello.txt"), "{out}");

    let (_, out, _) = harness(&env, &["events", "--tool", "Edit"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (_, out, _) = harness(
        &env,
        &["events", "--event", "BeforeTool", "--event", "SessionStart"],
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = harness(&env, &["events", "--session", "0a6a"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("gemini")), "{out}");
    let (_, out, _) = harness(&env, &["events", "-n", "2"]);
    assert_eq!(out.lines().count(), 2);
    let (_, out, _) = harness(&env, &["events", "--since", "1h"]);
    assert_eq!(out.lines().count(), 6);
    let (_, out, _) = harness(&env, &["events", "--since", "2000-01-01"]);
    assert_eq!(out.lines().count(), 6);

    let (code, out, _) = harness(&env, &["events", "--json"]);
    assert_eq!(code, 0);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["event"], "SessionStart");
    assert_eq!(rows[1]["payload"]["tool_input"]["old_string"], "hi");
    assert!(rows[1]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn bad_arguments_get_one_clear_message() {
    let env = filled();
    let (code, _, err) = harness(&env, &["events", "--session", "zzz"]);
    assert_eq!(code, 1);
    assert!(err.contains("no session starts with \"zzz\""), "{err}");
    let (code, _, err) = harness(&env, &["events", "--since", "last tuesday"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since"), "{err}");
    let (code, _, err) = harness(&env, &["events", "--colour"]);
    assert_eq!(code, 2, "clap's usage error");
    assert!(err.contains("unexpected argument '--colour'"), "{err}");
}

#[test]
fn a_malformed_config_stops_the_cli_with_the_file_and_the_fix() {
    let env = filled();
    env.config("{\"stor\": {}}");
    let (code, _, err) = harness(&env, &["status"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("config.json"), "{err}");
    assert!(err.contains("unknown field `stor`"), "{err}");
    assert!(err.contains("fix or remove the file"), "{err}");
    // doctor names it too, and exits 1.
    let (code, out, _) = harness(&env, &["doctor"]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  config"), "{out}");
}

#[test]
fn sessions_and_status_show_both_agents() {
    let env = filled();
    let (code, out, _) = harness(&env, &["sessions"]);
    assert_eq!(code, 0);
    assert!(out.contains("27bffab0  claude"), "{out}");
    assert!(out.contains("0a6af28b  gemini"), "{out}");
    let (_, out, _) = harness(&env, &["sessions", "--json"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    // The hooks ran as children of this test, which still runs: both are live.
    assert!(rows.iter().all(|r| r["state"] == "live"), "{out}");

    let (code, out, _) = harness(&env, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("Live sessions (2)"), "{out}");
    assert!(out.contains("Recent activity"), "{out}");
    let (_, out, _) = harness(&env, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 6);
    assert_eq!(v["live_sessions"].as_array().unwrap().len(), 2);
}

#[test]
fn an_ended_session_is_not_live() {
    let env = filled();
    env.hook(
        "harness-session-end",
        fixture("claude-code-2.1.197/SessionEnd.json"),
    );
    let (_, out, _) = harness(&env, &["sessions", "--live"]);
    assert!(!out.contains("27bffab0"), "{out}");
    assert!(out.contains("0a6af28b"), "{out}");
}

#[test]
fn follow_prints_new_events_as_they_arrive() {
    let env = filled();
    let mut cmd = Command::new(support::bin("harness"));
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env("HARNESS_CONFIG", "/dev/null")
        .args(["events", "--follow", "-n", "1"])
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("BeforeTool"), "{first}");
    env.hook("harness-stop", fixture("claude-code-2.1.197/Stop.json"));
    let started = Instant::now();
    let next = lines.next().unwrap().unwrap();
    assert!(next.contains("Stop"), "{next}");
    assert!(started.elapsed() < Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_empty_store_says_how_to_start() {
    let env = Env::new("empty-cli");
    let (code, out, _) = harness(&env, &["events"]);
    assert_eq!(code, 0);
    assert!(out.contains("harness install"), "{out}");
    let (code, out, _) = harness(&env, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("Live sessions (0)"), "{out}");
}
