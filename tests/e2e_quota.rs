//! End-to-end quota with the real `claude`: a 429 from the (mock) API is remembered and acted on
//! at the next prompt; the status line command runs under a real interactive session in tmux.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;

#[test]
fn a_429_is_remembered_and_the_next_prompt_is_advised() {
    support::clients::each_claude(a_429_is_remembered_and_the_next_prompt_is_advised_on);
}

fn a_429_is_remembered_and_the_next_prompt_is_advised_on(claude: &support::clients::Claude) {
    let limited = AnthropicMock::start(vec![Turn::rate_limited()]);
    let c = ClaudeEnv::new("e2e-quota-429", claude, String::new());
    let run = c.run_against(&limited.url(), "hello", &[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let rows = c.env.count_when(
        "SELECT count(*) FROM exhaustion WHERE provider = 'claude'",
        1,
    );
    assert_eq!(rows, 1, "the rate limit is on record");

    let ok = AnthropicMock::start(vec![Turn::text("fine now")]);
    let run = c.run_against(&ok.url(), "and now?", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let text = support::joined(&ok.message_requests());
    assert!(
        text.contains("agent-harness quota: Claude is rate-limited until"),
        "{text}"
    );
    assert!(text.contains("/delegate-gemini"), "{text}");
    // The turn went through: the API answers again, so the rate limit is cleared.
    assert_eq!(c.env.count_when("SELECT count(*) FROM exhaustion", 0), 0);
}

#[test]
fn with_both_providers_out_the_prompt_is_blocked_before_any_request() {
    support::clients::each_claude(
        with_both_providers_out_the_prompt_is_blocked_before_any_request_on,
    );
}

fn with_both_providers_out_the_prompt_is_blocked_before_any_request_on(
    claude: &support::clients::Claude,
) {
    let limited = AnthropicMock::start(vec![Turn::rate_limited()]);
    let c = ClaudeEnv::new("e2e-quota-both", claude, String::new());
    let run = c.run_against(&limited.url(), "hello", &[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    // Gemini is out too (as a run's quota error would record it).
    let conn = c.env.db();
    let now = agent_harness::time::now_ms();
    agent_harness::store::quota::put_exhaustion(
        &conn,
        &agent_harness::store::quota::Exhaustion {
            provider: "gemini".into(),
            since_ms: now,
            until_ms: agent_harness::time::next_pacific_midnight(now),
            until_from: "pacific-midnight".into(),
            reason: "quota".into(),
        },
    )
    .unwrap();
    drop(conn);
    let never = AnthropicMock::start(vec![Turn::text("should not be asked")]);
    let run = c.run_against(&never.url(), "please go on", &[]);
    assert!(
        never.message_requests().is_empty(),
        "no request may reach the model"
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("both Claude and Gemini are out of quota"),
        "{}",
        run.describe()
    );
}

#[test]
fn the_real_transcript_is_read_into_usage_and_estimates() {
    support::clients::each_claude(the_real_transcript_is_read_into_usage_and_estimates_on);
}

fn the_real_transcript_is_read_into_usage_and_estimates_on(claude: &support::clients::Claude) {
    let mock = AnthropicMock::start(vec![
        Turn::tool("Bash", json!({"command": "true", "description": "nothing"})),
        Turn::text("done"),
    ]);
    let c = ClaudeEnv::new("e2e-quota-usage", claude, mock.url());
    c.env.config(r#"{"quota": {"plan": "pro"}}"#);
    let run = c.run("do it", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    // Two API responses, each 1200 input + 80 output tokens (the mock's usage), once each.
    assert_eq!(c.env.count_when("SELECT count(*) FROM usage", 2), 2);
    assert_eq!(c.env.count("SELECT sum(input_tokens) FROM usage"), 2400);
    assert_eq!(c.env.count("SELECT sum(output_tokens) FROM usage"), 160);
    let estimated = c.env.count(
        "SELECT count(*) FROM quota_figures WHERE source = 'transcripts' AND window = 'five_hour'",
    );
    assert_eq!(estimated, 1);
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().unwrap()
}

#[test]
fn the_status_line_runs_under_an_interactive_claude_in_tmux() {
    support::clients::each_claude(the_status_line_runs_under_an_interactive_claude_in_tmux_on);
}

fn the_status_line_runs_under_an_interactive_claude_in_tmux_on(claude: &support::clients::Claude) {
    if Command::new("tmux").arg("-V").output().is_err() {
        let msg = "end-to-end status line test needs tmux (apt-get install tmux)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let mock = AnthropicMock::start(vec![Turn::text("Hello from the mock.")]);
    let c = ClaudeEnv::new("e2e-statusline", claude, mock.url());
    // Interactive sessions ask once whether to use an API key from the environment.
    let claude_json = c.env.home.join(".claude.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&claude_json).unwrap()).unwrap();
    state["customApiKeyResponses"] = json!({"approved": ["sk-ant-test-e2e-key"], "rejected": []});
    std::fs::write(&claude_json, state.to_string()).unwrap();

    let socket = c.env.dir.path().join("tmux.sock");
    let sock = socket.to_str().unwrap();
    // The same environment as `claude -p` runs get, through a small launcher script.
    let launcher = c.env.dir.path().join("launch.sh");
    let cmd = c.command(&c.project);
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.push_str(&format!(
                "export {}={}\n",
                k.to_string_lossy(),
                agent_harness::shell::quote(&v.to_string_lossy())
            ));
        }
    }
    script.push_str("export TERM=xterm-256color\n");
    script.push_str(&format!(
        "cd {} && exec {}\n",
        agent_harness::shell::quote(c.project.to_str().unwrap()),
        agent_harness::shell::quote(claude.path.to_str().unwrap())
    ));
    std::fs::write(&launcher, script).unwrap();
    let out = tmux(&[
        "-S",
        sock,
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "160",
        "-y",
        "40",
        "sh",
        launcher.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-S", &self.0, "kill-server"])
                .output();
        }
    }
    let _kill = Kill(sock.to_owned());

    let screen = || {
        String::from_utf8_lossy(&tmux(&["-S", sock, "capture-pane", "-p", "-t", "e2e"]).stdout)
            .into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // The status line runs when the session starts; a response makes it run again.
    let mut asked = false;
    let started = Instant::now();
    let recorded = loop {
        if !asked && started.elapsed() > Duration::from_secs(5) {
            tmux(&["-S", sock, "send-keys", "-t", "e2e", "say hello", "Enter"]);
            asked = true;
        }
        let n = if c.env.db.exists() {
            c.env.count("SELECT count(*) FROM session_status")
        } else {
            0
        };
        if n > 0 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(recorded, "the status line never ran; screen:\n{}", screen());
    let (model, ctx): (Option<String>, Option<f64>) = c
        .env
        .db()
        .query_row("SELECT model, context_pct FROM session_status", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(model.is_some(), "the status line input carried the model");
    let _ = ctx;
    assert_eq!(c.env.log_text(), "", "no hook reported a problem");
}
