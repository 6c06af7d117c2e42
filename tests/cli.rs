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

/// The rows of a table, without its heading.
fn rows(out: &str) -> Vec<&str> {
    out.lines().skip(1).collect()
}

/// Kills a `--follow` child when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    assert!(out.starts_with("TIME "), "a heading first: {out}");
    assert_eq!(rows(&out).len(), 6, "{out}");
    assert!(
        out.contains("PreToolUse") && out.contains("BeforeTool"),
        "{out}"
    );
    assert!(out.contains("/home/dev/project/hello.txt"), "{out}");

    let (_, out, _) = harness(&env, &["events", "--tool", "Edit"]);
    assert_eq!(rows(&out).len(), 2, "{out}");
    let (_, out, _) = harness(
        &env,
        &["events", "--event", "BeforeTool", "--event", "SessionStart"],
    );
    assert_eq!(rows(&out).len(), 3, "{out}");
    let (_, out, _) = harness(&env, &["events", "--session", "0a6a"]);
    assert_eq!(rows(&out).len(), 2, "{out}");
    assert!(rows(&out).iter().all(|l| l.contains("gemini")), "{out}");
    let (_, out, _) = harness(&env, &["events", "-n", "2"]);
    assert_eq!(rows(&out).len(), 2);
    let (_, out, _) = harness(&env, &["events", "--since", "1h"]);
    assert_eq!(rows(&out).len(), 6);
    let (_, out, _) = harness(&env, &["events", "--since", "2000-01-01"]);
    assert_eq!(rows(&out).len(), 6);

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
    let mut child = Killed(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let heading = lines.next().unwrap().unwrap();
    assert!(heading.starts_with("TIME"), "{heading}");
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("BeforeTool"), "{first}");
    env.hook("harness-stop", fixture("claude-code-2.1.197/Stop.json"));
    let started = Instant::now();
    let next = lines.next().unwrap().unwrap();
    assert!(next.contains("Stop"), "{next}");
    assert!(started.elapsed() < Duration::from_secs(5));
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
    // Install is user-wide by default: nothing says to run it "in a project".
    assert!(out.contains("`--project DIR` for one"), "{out}");
    let (code, help, _) = harness(&env, &["--help"]);
    assert_eq!(code, 0);
    for out in [&out, &help] {
        assert!(!out.contains("in a project"), "{out}");
        assert!(!out.contains("a project's .claude"), "{out}");
    }
    assert!(
        help.contains("~/.claude/settings.json (every project)"),
        "{help}"
    );
    let (_, doctor, _) = harness(&env, &["doctor"]);
    assert!(!doctor.contains("in your project"), "{doctor}");
    assert!(
        doctor.contains("`--project DIR` for one project"),
        "{doctor}"
    );
}

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// A project (a git root) where session A holds `src/main.rs` and session B was denied it.
fn a_denial() -> (Env, String) {
    let env = Env::new("cli-deny");
    let root = env.dir.path().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    let file = root.join("src/main.rs").to_string_lossy().into_owned();
    for session in [A, B] {
        let payload = serde_json::json!({
            "session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": root,
            "hook_event_name": "PreToolUse", "tool_name": "Write", "tool_use_id": session,
            "tool_input": {"file_path": file, "content": "x"},
        });
        let out = env.hook("harness-pre-tool-use", payload.to_string());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    (env, file)
}

#[test]
fn a_lock_denial_shows_in_events_status_and_the_lock_history() {
    let (env, file) = a_denial();
    let (_, out, _) = harness(&env, &["events"]);
    let events = rows(&out);
    assert_eq!(events.len(), 2, "{out}");
    assert!(out.lines().next().unwrap().contains("DECISION"), "{out}");
    assert!(events[0].contains("Write         -  "), "{out}");
    assert!(events[1].contains("bbbbbbbb"), "{out}");
    assert!(events[1].contains("Write         deny  "), "{out}");
    assert!(
        events[1].contains("deliberate file lock held by another agent"),
        "{out}"
    );

    let (_, out, _) = harness(&env, &["events", "--decision", "deny"]);
    assert_eq!(rows_of(&out), 1, "{out}");
    let (_, out, _) = harness(&env, &["events", "--decision", "block"]);
    assert!(out.contains("the harness made no such decision"), "{out}");
    let (_, out, _) = harness(&env, &["events", "--decision", "any", "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["decision"].as_str().unwrap().starts_with("deny: "), "{v}");
    let (code, _, err) = harness(&env, &["events", "--decision", "maybe"]);
    assert_eq!(code, 2, "{err}");

    let (_, out, _) = harness(&env, &["status"]);
    let at = out.find("Recent decisions").expect(&out);
    let section = &out[at..out[at..].find("\n\n").map_or(out.len(), |e| at + e)];
    assert!(section.contains("deny"), "{out}");
    assert!(section.contains("bbbbbbbb"), "{out}");
    let (_, out, _) = harness(&env, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["recent_decisions"].as_array().unwrap().len(), 1, "{v}");

    let (code, _, _) = harness(&env, &["locks", "release", &file]);
    assert_eq!(code, 0);
    let (_, out, _) = harness(&env, &["locks", "--history"]);
    let history = rows(&out);
    assert_eq!(history.len(), 3, "{out}");
    assert!(
        history[0].contains("taken") && history[0].contains("aaaaaaaa"),
        "{out}"
    );
    assert!(
        history[1].contains("denied") && history[1].contains("held by aaaaaaaa"),
        "{out}"
    );
    assert!(
        history[2].contains("released") && history[2].contains("by hand"),
        "{out}"
    );
    let (_, out, _) = harness(&env, &["locks", "--history", "--session", "bbbb"]);
    assert_eq!(rows_of(&out), 1, "{out}");
    let (_, out, _) = harness(&env, &["locks", "--history", "--json", "-n", "1"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["action"], "release");
    assert_eq!(v["other"], A);
    let (code, _, err) = harness(&env, &["locks", "-n", "3"]);
    assert_eq!(code, 2, "-n belongs to --history: {err}");
}

/// How many rows a table has under its heading.
fn rows_of(out: &str) -> usize {
    rows(out).len()
}

#[test]
fn sessions_live_with_none_live_says_so() {
    let env = filled();
    for fixture_name in [
        "claude-code-2.1.197/SessionEnd.json",
        "gemini-cli-0.61.0/SessionEnd-exit.json",
    ] {
        env.hook("harness-session-end", fixture(fixture_name));
    }
    let (code, out, _) = harness(&env, &["sessions", "--live"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No live sessions"), "{out}");
    assert!(!out.contains("No sessions recorded yet"), "{out}");
    let env = Env::new("cli-none-live");
    let (_, out, _) = harness(&env, &["sessions", "--live"]);
    assert!(out.starts_with("No live sessions"), "{out}");
}

#[test]
fn an_old_log_problem_is_not_shown_as_current() {
    let env = filled();
    let old = chrono::Utc::now() - chrono::Duration::days(3);
    let recent = chrono::Utc::now() - chrono::Duration::minutes(5);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    std::fs::write(
        env.log(),
        format!(
            "{} harness-stop[1]: store is locked (fixed since)\n",
            stamp(old)
        ),
    )
    .unwrap();
    let (_, out, _) = harness(&env, &["doctor"]);
    assert!(
        out.contains("ok    log        no problems logged in the last day (1 older in"),
        "{out}"
    );
    assert!(!out.contains("fixed since"), "{out}");
    let (_, out, _) = harness(&env, &["status"]);
    assert!(!out.contains("fixed since"), "{out}");

    let mut log = std::fs::read_to_string(env.log()).unwrap();
    log += &format!("{} harness-stop[2]: disk full\n", stamp(recent));
    std::fs::write(env.log(), log).unwrap();
    let (_, out, _) = harness(&env, &["doctor"]);
    assert!(
        out.contains("warn  log        problems in the last day"),
        "{out}"
    );
    assert!(out.contains("5m ago: harness-stop[2]: disk full"), "{out}");
    assert!(!out.contains("fixed since"), "{out}");
    let (_, out, _) = harness(&env, &["status"]);
    assert!(
        out.contains("  5m ago: harness-stop[2]: disk full"),
        "{out}"
    );
    assert!(!out.contains("fixed since"), "{out}");
    let (_, out, _) = harness(&env, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["recent_problems"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["older_problems"], 1, "{v}");
}

#[test]
fn delegate_with_a_session_prefix_resolves_it_or_refuses() {
    let env = filled();
    // A second Claude session sharing the first characters of 27bffab0.
    let mut other: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/SessionStart-startup.json")).unwrap();
    other["session_id"] = "27bf0000-0000-4000-8000-000000000000".into();
    env.hook("harness-session-start", other.to_string());
    // No Gemini: the run fails at once, but only after the requester was settled.
    env.config(r#"{"gemini": {"binary": "/nonexistent/gemini"}}"#);

    let (code, _, err) = harness(&env, &["delegate", "--session", "27bf", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"27bf\" names 2 sessions"), "{err}");
    assert!(
        err.contains("27bffab0-4151-4e78-ad34-7c89b0e5aea3")
            && err.contains("27bf0000-0000-4000-8000-000000000000"),
        "the matches are named: {err}"
    );
    let (code, _, err) = harness(&env, &["delegate", "--session", "ffff", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("no session starts with \"ffff\""), "{err}");
    assert_eq!(
        env.count("SELECT count(*) FROM runs"),
        0,
        "nothing was sent"
    );
    // From the slash command the refusal is the report.
    let (code, out, _) = harness(&env, &["delegate", "--pending", "--session", "ffff"]);
    assert_eq!(code, 0);
    assert!(out.contains("no session starts with"), "{out}");

    harness(
        &env,
        &["delegate", "--session", "27bff", "--wait", "5", "hi"],
    );
    let requester: String = env
        .db()
        .query_row("SELECT requester FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(requester, "27bffab0-4151-4e78-ad34-7c89b0e5aea3");
}

#[test]
fn delegate_accepts_a_whole_session_id_the_store_has_not_seen() {
    let env = filled();
    env.config(r#"{"gemini": {"binary": "/nonexistent/gemini"}}"#);
    let unseen = "dddddddd-0000-4000-8000-000000000004";
    let (_, _, err) = harness(
        &env,
        &["delegate", "--session", unseen, "--wait", "5", "hi"],
    );
    assert!(!err.contains("no session starts with"), "{err}");
    let requester: String = env
        .db()
        .query_row("SELECT requester FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(requester, unseen);
}

/// `harness ... | head -c 600`: a reader that goes away is not a failure, and says nothing.
#[test]
fn a_closed_stdout_ends_any_command_quietly() {
    let env = filled();
    for args in [
        &["export", "otlp", "--dry-run"][..],
        &["events"],
        &["events", "--json"],
        &["sessions"],
        &["usage", "blocks", "--json"],
        &["routes"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before the first write
        let mut cmd = Command::new(support::bin("harness"));
        let out = env
            .apply_std(cmd.env_clear())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// An empty history costs 0, not -0 (an empty f64 sum is -0.0).
#[test]
fn an_empty_usage_history_costs_zero_not_negative_zero() {
    let env = Env::new("cli-usage-empty");
    for view in ["blocks", "daily", "sessions"] {
        let (code, out, err) = harness(&env, &["usage", view, "--json"]);
        assert_eq!(code, 0, "{view}: {err}");
        assert!(out.contains("\"totalCost\":0.0"), "{view}: {out}");
        assert!(!out.contains("-0"), "{view}: {out}");
        let (_, table, _) = harness(&env, &["usage", view]);
        assert!(!table.contains("-0.00"), "{view}: {table}");
    }
}

#[test]
fn doctor_checks_the_wal_beside_the_file_a_symlinked_store_names() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("doctor-symlinked-store");
    let real = env.home.join("elsewhere/harness.db");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    let out = env
        .cmd("harness-pre-tool-use")
        .env("HARNESS_DB", &real)
        .write_stdin(support::fixture("claude-code-2.1.197/PreToolUse-Edit.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let wal = env.home.join("elsewhere/harness.db-wal");
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = env.home.join("harness.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = env
        .cmd("harness")
        .arg("doctor")
        .env("HARNESS_DB", &link)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("wal is 644: others can read it")
            && text.contains("elsewhere/harness.db-wal"),
        "{text}"
    );
}
