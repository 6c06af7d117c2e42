//! End-to-end: the real `gemini` (0.61.0, from the npm registry) with the harness as its hooks,
//! against a mock Gemini API on 127.0.0.1, beside a real `claude` session in the same project.

mod support;

use agent_harness::store::query::{self, EventFilter};
use serde_json::json;
use support::anthropic::{AnthropicMock, Turn};
use support::claude::ClaudeEnv;
use support::gemini::{GTurn, GeminiMock};
use support::gemini_cli::Gemini;

#[test]
fn a_gemini_run_in_the_same_project_is_recorded_as_a_gemini_agent_in_the_same_store() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    support::clients::each_claude(|claude| {
        a_gemini_run_in_the_same_project_is_recorded_as_a_gemini_agent_in_the_same_store_on(
            claude,
            gemini.clone(),
        )
    });
}

fn a_gemini_run_in_the_same_project_is_recorded_as_a_gemini_agent_in_the_same_store_on(
    claude: &support::clients::Claude,
    gemini: std::path::PathBuf,
) {
    let anthropic = AnthropicMock::start(vec![Turn::text("Nothing to do.")]);
    let c = ClaudeEnv::new("e2e-gemini", claude, anthropic.url());
    let run = c.run("hello", &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let claude_session = run.session_id().unwrap();

    let mock = GeminiMock::start(vec![
        GTurn::Call {
            name: "write_file".into(),
            args: json!({"file_path": "out.txt", "content": "hello\n"}),
        },
        GTurn::Text("Done writing.".into()),
    ]);
    let g = Gemini::setup(&c.env, &c.project, gemini, mock.url());
    let run = g.run("write a file");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let lines = run.lines();
    let gemini_session = lines[0]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(
        lines.last().unwrap()["status"],
        "success",
        "{}",
        run.describe()
    );
    assert_eq!(
        std::fs::read_to_string(c.project.join("out.txt")).unwrap(),
        "hello\n"
    );

    let conn = c.env.db();
    let sessions = query::sessions(&conn, 10).unwrap();
    let agent_of = |id: &str| {
        sessions
            .iter()
            .find(|s| s.session_id == id)
            .map(|s| s.agent.clone())
    };
    assert_eq!(agent_of(&claude_session).as_deref(), Some("claude"));
    assert_eq!(agent_of(&gemini_session).as_deref(), Some("gemini"));

    let rows = query::events(
        &conn,
        &EventFilter {
            sessions: Some(vec![gemini_session.clone()]),
            ..EventFilter::default()
        },
        100,
    )
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "SessionStart",
            "BeforeAgent",
            "BeforeTool",
            "AfterTool",
            "AfterAgent",
            "SessionEnd"
        ]
    );
    assert!(rows.iter().all(|r| r.agent == "gemini"));
    let s = query::session(&conn, &gemini_session).unwrap().unwrap();
    assert_eq!(s.cwd.as_deref(), c.project.to_str());
    assert_eq!(s.end_reason.as_deref(), Some("exit"));
    // Gemini sends the path as the model wrote it; it is stored resolved against the cwd.
    let calls = query::tool_calls(&conn, &gemini_session).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].tool_name, "write_file");
    assert_eq!(calls[0].outcome, "success");
    assert_eq!(
        calls[0].file_path.as_deref(),
        c.project.join("out.txt").to_str()
    );
    assert_eq!(c.env.log_text(), "", "no hook reported a problem");
}
