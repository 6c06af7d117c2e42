//! Quota through the built binaries: the status line records official figures and prints the
//! line; a rate limit is remembered; prompts get advice once; subagents are denied at the block
//! level; both providers out blocks the prompt.

mod support;

use std::process::Output;

use agent_harness::store::runs::{self, Run};
use serde_json::{Value, json};
use support::{Env, fixture, stderr, stdout};

const S: &str = "eeeeeeee-0000-4000-8000-000000000005";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A subscriber's status line input (the shape reference/claude-code-hooks.md §6.3 and §7.1
/// describe: `rate_limits` with `used_percentage` 0-100 and `resets_at` in Unix seconds).
fn subscriber(five: f64, seven: f64) -> Value {
    let mut v: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/statusline-api-key.json")).unwrap();
    v["session_id"] = json!(S);
    v["rate_limits"] = json!({
        "five_hour": {"used_percentage": five, "resets_at": now_secs() + 2 * 3600 + 600},
        "seven_day": {"used_percentage": seven, "resets_at": now_secs() + 4 * 86400},
    });
    v
}

fn statusline(env: &Env, input: &Value) -> String {
    let out = env.hook("harness-statusline", input.to_string());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "one line: {line:?}");
    line.trim().to_owned()
}

fn prompt(env: &Env, text: &str) -> Output {
    env.hook(
        "harness-user-prompt-submit",
        json!({"session_id": S, "transcript_path": "/t.jsonl", "cwd": "/tmp",
               "hook_event_name": "UserPromptSubmit", "prompt": text})
        .to_string(),
    )
}

fn agent_call(env: &Env) -> Output {
    env.hook(
        "harness-pre-tool-use",
        json!({"session_id": S, "transcript_path": "/t.jsonl", "cwd": "/tmp",
               "hook_event_name": "PreToolUse", "tool_name": "Agent", "tool_use_id": "toolu_a",
               "tool_input": {"description": "x", "prompt": "y", "subagent_type": "general-purpose"}})
        .to_string(),
    )
}

fn context(out: &Output) -> Option<String> {
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| {
            v["hookSpecificOutput"]["additionalContext"]
                .as_str()
                .map(str::to_owned)
        })
}

#[test]
fn the_status_line_records_official_figures_and_shows_them() {
    let env = Env::new("quota-statusline");
    let line = statusline(&env, &subscriber(72.4, 40.0));
    assert!(line.starts_with("Claude 5h 72% ("), "{line}");
    assert!(line.contains("· 7d 40%"), "{line}");
    assert!(line.ends_with("ctx 0%"), "{line}");
    let rows: i64 = env.count("SELECT count(*) FROM quota_figures WHERE official = 1");
    assert_eq!(rows, 2);
    // An API-key user's input has no rate limits: nothing to record, still a line.
    let env = Env::new("quota-statusline-key");
    let line = statusline(
        &env,
        &serde_json::from_slice(&fixture("claude-code-2.1.197/statusline-api-key.json")).unwrap(),
    );
    assert_eq!(line, "ctx 0%");
    // Garbage in: still one line, no error.
    let out = env.hook("harness-statusline", "not json");
    assert_eq!(out.status.code(), Some(0));
    // `harness quota` says where each figure comes from.
    let env = Env::new("quota-panel");
    statusline(&env, &subscriber(72.4, 40.0));
    let out = env.cmd("harness").arg("quota").output().unwrap();
    let panel = stdout(&out);
    assert!(panel.contains("5h 72% (official, resets"), "{panel}");
    let out = env
        .cmd("harness")
        .args(["quota", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["claude"]["windows"][0]["official"], true);
}

#[test]
fn a_warning_comes_once_per_window_and_again_after_recovery() {
    let env = Env::new("quota-warn");
    statusline(&env, &subscriber(50.0, 10.0));
    assert_eq!(context(&prompt(&env, "one")), None);
    statusline(&env, &subscriber(84.0, 10.0));
    let note = context(&prompt(&env, "two")).expect("a warning");
    assert!(note.contains("Claude 5h 84% (official"), "{note}");
    assert!(note.contains("/delegate-gemini"), "{note}");
    assert_eq!(context(&prompt(&env, "three")), None, "once per episode");
    // Fresh data shows recovery, then a new climb: warned again.
    statusline(&env, &subscriber(20.0, 10.0));
    statusline(&env, &subscriber(85.0, 10.0));
    assert!(context(&prompt(&env, "four")).is_some());
}

#[test]
fn official_figures_at_the_block_level_deny_subagents() {
    let env = Env::new("quota-block");
    statusline(&env, &subscriber(96.0, 10.0));
    let out = agent_call(&env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
    let reason = v["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("96% (official"), "{reason}");
    assert!(reason.contains("/delegate-gemini"), "{reason}");
    // Other tools go on.
    let out = env.hook(
        "harness-pre-tool-use",
        fixture("claude-code-2.1.197/PreToolUse-Bash.json"),
    );
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
}

#[test]
fn a_rate_limit_is_remembered_with_its_reset_and_cleared_by_a_good_turn() {
    let env = Env::new("quota-429");
    let mut failure: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/StopFailure-rate_limit.json"))
            .unwrap();
    failure["session_id"] = json!(S);
    failure["last_assistant_message"] = json!("You've hit your session limit · resets 11:59pm");
    let out = env.hook("harness-stop-failure", failure.to_string());
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let until_from: String = env
        .db()
        .query_row(
            "SELECT until_from FROM exhaustion WHERE provider = 'claude'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(until_from, "message");
    let note = context(&prompt(&env, "go on")).expect("a note");
    assert!(
        note.contains("Claude is rate-limited until") && note.contains("23:59"),
        "{note}"
    );
    assert!(
        serde_json::from_slice::<Value>(&agent_call(&env).stdout).is_ok(),
        "subagents denied"
    );
    assert!(statusline(&env, &json!({"session_id": S})).contains("Claude limited until 23:59"));
    // A turn that ends normally clears it.
    let mut stop: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/Stop.json")).unwrap();
    stop["session_id"] = json!(S);
    env.hook("harness-stop", stop.to_string());
    assert_eq!(env.count("SELECT count(*) FROM exhaustion"), 0);
    assert!(agent_call(&env).stdout.is_empty());
}

fn gemini_run(env: &Env, requests: i64, error_kind: Option<&str>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let conn = env.db();
    let run = Run {
        run_id: format!("gr-test{requests}{}", error_kind.unwrap_or("")),
        task: "t".into(),
        prompt: "t".into(),
        mode: "read-only".into(),
        status: if error_kind.is_some() {
            "error"
        } else {
            "success"
        }
        .into(),
        error_kind: error_kind.map(str::to_owned),
        created_ms: now,
        requests: Some(requests),
        total_tokens: Some(requests * 1000),
        waiter: "none".into(),
        ..Run::default()
    };
    runs::put(&conn, &run).unwrap();
}

#[test]
fn gemini_runs_count_against_the_daily_limit_as_an_estimate() {
    let env = Env::new("quota-gemini");
    // Create the store first (the hook does on its first call).
    statusline(&env, &json!({}));
    // The default limit is the AI Studio free tier's 20 a day.
    gemini_run(&env, 17, None);
    let line = statusline(&env, &json!({}));
    assert_eq!(line, "Gemini ~17/20", "{line}");
    let note = context(&prompt(&env, "hi")).expect("a Gemini warning at 85%");
    assert!(
        note.contains("Gemini today 85% (17 of 20 requests"),
        "{note}"
    );
    assert!(note.contains("estimated"), "{note}");
}

#[test]
fn when_both_providers_are_out_the_prompt_is_blocked_with_both_resets() {
    let env = Env::new("quota-both");
    statusline(&env, &json!({}));
    // Gemini out: recorded the way the runner records a quota error.
    let conn = env.db();
    let until = (now_secs() + 5 * 3600) * 1000;
    for (provider, until) in [("gemini", until), ("claude", until - 3 * 3600 * 1000)] {
        agent_harness::store::quota::put_exhaustion(
            &conn,
            &agent_harness::store::quota::Exhaustion {
                provider: provider.into(),
                since_ms: now_secs() * 1000,
                until_ms: until,
                until_from: "message".into(),
                reason: "429".into(),
            },
        )
        .unwrap();
    }
    drop(conn);
    let out = prompt(&env, "please continue");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "block");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("both Claude and Gemini are out of quota"),
        "{reason}"
    );
    assert!(
        reason.contains("(in 1h59m)") || reason.contains("(in 2h)"),
        "{reason}"
    );
    assert!(
        reason.contains("(in 4h59m)") || reason.contains("(in 5h)"),
        "{reason}"
    );
    // Blocked once per episode: the same prompt sent again goes through, with the resets.
    let again = prompt(&env, "please continue");
    let note = context(&again).expect("the resend passes with a note");
    assert!(note.contains("sent this prompt again"), "{note}");
    // `harness quota clear claude` forgets Claude's limit alone; then no block, no note about
    // both.
    let out = env
        .cmd("harness")
        .args(["quota", "clear", "claude"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Cleared 1 recorded rate limit(s).");
    assert_eq!(
        env.count("SELECT count(*) FROM exhaustion WHERE provider = 'gemini'"),
        1
    );
    let after = prompt(&env, "please continue");
    assert!(
        !context(&after).unwrap_or_default().contains("both"),
        "{}",
        stdout(&after)
    );
    let bad = env
        .cmd("harness")
        .args(["quota", "clear", "openai"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

/// An assistant line as Claude Code 2.1.197 writes it (reference §4.2), one per content block.
fn assistant_line(
    session: &str,
    msg: &str,
    req: &str,
    ts: &str,
    input: u64,
    output: u64,
    sidechain: bool,
) -> String {
    json!({"parentUuid": "p", "isSidechain": sidechain, "type": "assistant", "uuid": format!("u-{msg}-{req}"),
           "timestamp": ts, "sessionId": session, "version": "2.1.197", "requestId": req,
           "message": {"id": msg, "type": "message", "role": "assistant", "model": "claude-opus-4-8",
                       "content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": input, "cache_creation_input_tokens": 5,
                                 "cache_read_input_tokens": 3, "output_tokens": output}}})
    .to_string()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[test]
fn transcripts_feed_deduplicated_estimates_through_stop_and_harness_quota() {
    let env = Env::new("quota-transcripts");
    env.config(r#"{"quota": {"plan": "pro"}}"#);
    let claude_dir = env.home.join(".claude");
    let project = claude_dir.join("projects/-home-dev-project");
    std::fs::create_dir_all(project.join(format!("{S}/subagents"))).unwrap();
    let transcript = project.join(format!("{S}.jsonl"));
    let now = agent_harness::time::now_ms();
    let t = iso(now - 60_000);
    // One response written as two lines (two content blocks), one more response, a user line.
    let text = [
        json!({"type": "user", "message": {"role": "user", "content": "\"usage\": {\"input_tokens\": 999999}"}}).to_string(),
        assistant_line(S, "msg_1", "req_1", &t, 10_000, 500, false),
        assistant_line(S, "msg_1", "req_1", &t, 10_000, 500, false),
        assistant_line(S, "msg_2", "req_2", &t, 8_000, 1_500, false),
    ]
    .join("\n")
        + "\n";
    std::fs::write(&transcript, &text).unwrap();
    let mut stop: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/Stop.json")).unwrap();
    stop["session_id"] = json!(S);
    stop["transcript_path"] = json!(transcript);
    let out = env.hook("harness-stop", stop.to_string());
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM usage"), 2, "deduplicated");
    assert_eq!(
        env.count("SELECT sum(input_tokens + output_tokens) FROM usage"),
        20_000
    );
    // 20k of the pro preset's 44k: an estimate, marked as one.
    let line = statusline(
        &env,
        &json!({"session_id": S, "transcript_path": transcript}),
    );
    assert!(line.starts_with("Claude 5h ~45% ("), "{line}");
    // Appending: only the new line is read; a subagent's file is found by `harness quota`.
    let more = assistant_line(S, "msg_3", "req_3", &t, 1_000, 0, false) + "\n";
    std::fs::write(&transcript, text.clone() + &more).unwrap();
    std::fs::write(
        project.join(format!("{S}/subagents/agent-a1.jsonl")),
        assistant_line(S, "msg_4", "req_4", &t, 2_000, 0, true) + "\n",
    )
    .unwrap();
    let out = env
        .cmd("harness")
        .arg("quota")
        .env("CLAUDE_CONFIG_DIR", &claude_dir)
        .output()
        .unwrap();
    let panel = stdout(&out);
    assert!(panel.contains("read 2 transcript(s)"), "{panel}");
    assert!(
        panel.contains("5h 52% (23k of 44k tokens) (estimated, resets"),
        "{panel}"
    );
    assert_eq!(env.count("SELECT count(*) FROM usage"), 4);
    // A transcript replaced under the same name is read from its start.
    std::fs::remove_file(&transcript).unwrap();
    std::fs::write(
        &transcript,
        assistant_line(S, "msg_5", "req_5", &t, 100, 0, false) + "\n",
    )
    .unwrap();
    env.hook("harness-stop", stop.to_string());
    assert_eq!(
        env.count("SELECT count(*) FROM usage WHERE message_id = 'msg_5'"),
        1
    );
}

#[test]
fn a_rate_limit_with_no_known_reset_is_assumed_short() {
    let env = Env::new("quota-short");
    let mut failure: Value =
        serde_json::from_slice(&fixture("claude-code-2.1.197/StopFailure-rate_limit.json"))
            .unwrap();
    failure["session_id"] = json!(S);
    let cases = [
        (
            json!("API Error: 429 rate limit exceeded (per-minute)"),
            "per-minute",
            2,
        ),
        (json!(null), "guess", 15),
    ];
    for (message, from, minutes) in cases {
        failure["last_assistant_message"] = message;
        let before = now_secs() * 1000;
        let out = env.hook("harness-stop-failure", failure.to_string());
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
        let (until, until_from): (i64, String) = env
            .db()
            .query_row(
                "SELECT until_ms, until_from FROM exhaustion WHERE provider = 'claude'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(until_from, from);
        let span = until - before;
        assert!(
            (minutes * 60_000 - 2_000..=minutes * 60_000 + 2_000).contains(&span),
            "{from}: {span} ms"
        );
    }
}

#[test]
fn a_status_line_refresh_that_changes_nothing_takes_no_write_lock() {
    let env = Env::new("quota-readonly");
    let input = subscriber(72.4, 40.0);
    statusline(&env, &input);
    // Another process holds the write lock (a hook mid-transaction).
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The same figures again: read and shown, without waiting for the lock.
    let line = statusline(&env, &input);
    assert!(line.starts_with("Claude 5h 72% ("), "{line}");
    assert_eq!(env.log_text(), "");
    // New figures must be written: this refresh gives up on the lock (after 150 ms), logs it and
    // still prints a line; the next one after the lock is free records them.
    let line = statusline(&env, &subscriber(80.0, 40.0));
    assert_eq!(line.lines().count(), 1);
    assert!(
        env.log_text().contains("harness-statusline"),
        "{}",
        env.log_text()
    );
    holder.execute_batch("COMMIT").unwrap();
    let line = statusline(&env, &subscriber(80.0, 40.0));
    assert!(line.starts_with("Claude 5h 80% ("), "{line}");
}
