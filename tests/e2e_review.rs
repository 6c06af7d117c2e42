//! End-to-end review: a real `claude` session (against the mock Anthropic API) makes a change and
//! runs `harness review` through its Bash tool; the reviewer's REJECT blocks its Stop and the
//! findings reach Claude's model; a fix and a re-review let the turn end. And a reviewer that
//! keeps rejecting ends the loop after exactly `review.max_rounds` blocks.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;
use support::gemini::{GTurn, GeminiMock};
use support::gemini_cli::Gemini;

const SESSION: &str = "7d1f3c2a-0b5e-4c1d-9a8e-3f2b1c0d9e8f";
const REJECT: &str = r#"{"verdict":"REJECT","summary":"The sum is off by one.","findings":[{"file":"src/lib.rs","line":2,"severity":"major","problem":"add() returns a + b + 1.","fix":"Return a + b."}]}"#;
const APPROVE: &str =
    r#"{"verdict":"APPROVE","summary":"add() now returns the sum.","findings":[]}"#;

/// The project gets a first commit, so that the change is the working tree against HEAD (the
/// model's new file is untracked: Claude Code's Write refuses to overwrite a file it has not
/// read, so the model creates one).
fn commit_base(project: &Path) {
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("README.md"), "# add\n").unwrap();
    for args in [&["add", "."][..], &["commit", "-qm", "base"]] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(project)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn write(project: &Path, body: &str) -> Turn {
    Turn::tool(
        "Write",
        json!({"file_path": project.join("src/lib.rs"),
               "content": format!("pub fn add(a: i32, b: i32) -> i32 {{\n    {body}\n}}\n")}),
    )
}

fn review_call() -> Turn {
    Turn::tool(
        "Bash",
        json!({"command": format!("harness review --session {SESSION}"),
               "description": "Cross-model review"}),
    )
}

/// The decisions the gate gave at the session's Stops, in order.
fn stop_decisions(c: &ClaudeEnv) -> Vec<String> {
    let conn = c.env.db();
    let mut st = conn
        .prepare(
            "SELECT coalesce(decision, 'pass') FROM events WHERE session_id = ?1 \
             AND event = 'Stop' ORDER BY id",
        )
        .unwrap();
    st.query_map([SESSION], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_reject_blocks_stop_the_model_fixes_and_the_re_review_approves() {
    support::clients::each_claude(
        a_reject_blocks_stop_the_model_fixes_and_the_re_review_approves_on,
    );
}

fn a_reject_blocks_stop_the_model_fixes_and_the_re_review_approves_on(
    claude: &support::clients::Claude,
) {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    let mock_g = GeminiMock::start(vec![
        GTurn::Text(REJECT.into()),
        GTurn::Text(APPROVE.into()),
    ]);
    let mut c = ClaudeEnv::new("e2e-review", claude, String::new());
    assert!(c.project.join(".claude/commands/review.md").exists());
    commit_base(&c.project);
    let g = Gemini::setup(&c.env, &c.project, gemini.clone(), mock_g.url());
    // No Gemini hooks in any settings file: the run brings its own.
    std::fs::remove_file(g.project.join(".gemini/settings.json")).unwrap();
    c.env.config(
        &json!({"gemini": {"binary": gemini, "timeout_secs": 90, "fallback_model": ""}})
            .to_string(),
    );
    c.extra_env = vec![
        ("GOOGLE_GEMINI_BASE_URL".into(), mock_g.url()),
        ("GEMINI_API_KEY".into(), "fake-e2e-key".into()),
    ];
    let p = c.project.clone();
    let mock_a = AnthropicMock::start(vec![
        write(&p, "a + b + 1"),
        review_call(),
        Turn::text("Done: add() is implemented."),
        // After the block: the fix, and a re-review.
        write(&p, "a + b"),
        review_call(),
        Turn::text("Fixed the off-by-one; the review approves."),
    ]);
    c.api_url = mock_a.url();
    let run = c.run(
        "implement add() so that it returns the sum",
        &["--session-id", SESSION],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(mock_a.remaining(), 0, "{}", run.describe());

    // Gemini saw the criteria and the change.
    let asked = support::joined(&mock_g.chat_requests());
    assert!(
        asked.contains("implement add() so that it returns the sum"),
        "{asked}"
    );
    assert!(asked.contains("a + b + 1"), "{asked}");
    // The Stop block reached Claude's model, with the findings and the command.
    let sent = support::joined(&mock_a.message_requests());
    assert!(sent.contains("REJECTed this change"), "{sent}");
    assert!(sent.contains("src/lib.rs:2"), "{sent}");
    assert!(sent.contains("Return a + b."), "{sent}");
    assert!(
        sent.contains(&format!("harness review --session {SESSION}")),
        "{sent}"
    );
    // Two Stops: blocked, then allowed after the approve.
    let decisions = stop_decisions(&c);
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert!(decisions[0].starts_with("block: "), "{decisions:?}");
    assert_eq!(decisions[1], "pass", "{decisions:?}");
    let conn = c.env.db();
    let rows = agent_harness::store::reviews::recent(&conn, Some(SESSION), 10).unwrap();
    let statuses: Vec<&str> = rows.iter().rev().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["reject", "approve"]);
    assert!(
        std::fs::read_to_string(p.join("src/lib.rs"))
            .unwrap()
            .contains(
                "a + b
"
            )
    );
}

#[test]
fn a_reviewer_that_keeps_rejecting_ends_after_exactly_the_cap() {
    support::clients::each_claude(a_reviewer_that_keeps_rejecting_ends_after_exactly_the_cap_on);
}

fn a_reviewer_that_keeps_rejecting_ends_after_exactly_the_cap_on(
    claude: &support::clients::Claude,
) {
    let mut c = ClaudeEnv::new("e2e-review-cap", claude, String::new());
    commit_base(&c.project);
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/gemini");
    c.env.config(
        &json!({"gemini": {"binary": fake, "trust_workspace": true, "fallback_model": ""}})
            .to_string(),
    );
    let verdicts = c.env.dir.path().join("verdicts");
    std::fs::write(&verdicts, serde_json::to_string(REJECT).unwrap() + "\n").unwrap();
    c.extra_env = vec![
        ("FAKE_GEMINI_MODE".into(), "verdict".into()),
        (
            "FAKE_GEMINI_VERDICTS".into(),
            verdicts.to_string_lossy().into_owned(),
        ),
        (
            "FAKE_GEMINI_STATE".into(),
            c.env
                .dir
                .path()
                .join("fake-state")
                .to_string_lossy()
                .into_owned(),
        ),
    ];
    let p = c.project.clone();
    let mut script = vec![write(&p, "a + b + 1")];
    // One review and one attempt to end the turn per round, more than the cap allows.
    for _ in 0..6 {
        script.push(review_call());
        script.push(Turn::text("Done."));
    }
    let mock_a = AnthropicMock::start(script);
    c.api_url = mock_a.url();
    let run = c.run("implement add()", &["--session-id", SESSION]);
    assert_eq!(run.code, Some(0), "{}", run.describe());

    let decisions = stop_decisions(&c);
    let blocks = decisions
        .iter()
        .filter(|d| d.starts_with("block: "))
        .count();
    assert_eq!(blocks, 3, "{decisions:?}");
    assert_eq!(decisions.len(), 4, "{decisions:?}");
    let last = decisions.last().unwrap();
    assert!(last.contains("the decision is yours"), "{last}");
    // The turn ended there: the rest of the script was never asked for.
    assert_eq!(mock_a.remaining(), 4, "{}", run.describe());
}
