//! End-to-end file locks with the real clients: a Claude session holds a file while it is busy
//! (a Bash command that waits for the test's signal); another Claude session and a Gemini run are
//! denied writes to it, and the model receives the harness's reason as the tool's error.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::anthropic::{AnthropicMock, Turn};
use support::claude::{ClaudeEnv, Run};
use support::gemini::{GTurn, GeminiMock};
use support::gemini_cli::Gemini;

/// Session A: writes `file`, then waits in Bash until `go` exists, then ends.
fn holder_script(file: &Path, go: &Path) -> Vec<Turn> {
    vec![
        Turn::tool("Write", json!({"file_path": file, "content": "from A\n"})),
        Turn::tool(
            "Bash",
            json!({"command": format!("while [ ! -e '{}' ]; do sleep 0.1; done", go.display()),
                   "description": "wait for the test"}),
        ),
        Turn::text("A is done."),
    ]
}

fn wait_for_claim(c: &ClaudeEnv, file: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if c.env.db.exists()
            && let Ok(holder) = c.env.db().query_row(
                "SELECT session_id FROM claims WHERE path = ?1",
                [file.to_str().unwrap()],
                |r| r.get::<_, String>(0),
            )
        {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "A never claimed {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tool results the client sent back to the model, as text.
fn tool_errors(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|b| b["messages"].as_array().cloned().unwrap_or_default())
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result" && b["is_error"] == true)
        .map(|b| b["content"].to_string())
        .collect()
}

struct Holder {
    go: PathBuf,
    handle: Option<std::thread::JoinHandle<Run>>,
}

impl Holder {
    fn finish(mut self) -> Run {
        std::fs::write(&self.go, "").unwrap();
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Never leave session A waiting, even when an assertion failed.
        let _ = std::fs::write(&self.go, "");
    }
}

/// Session A, running: it wrote shared.txt and now waits in Bash until the holder is finished.
fn start_holder(
    label: &str,
    claude: &support::clients::Claude,
) -> (std::sync::Arc<ClaudeEnv>, PathBuf, Holder, AnthropicMock) {
    let c = ClaudeEnv::new(label, claude, String::new());
    let file = c.project.join("shared.txt");
    let go = c.env.dir.path().join("go");
    let mock_a = AnthropicMock::start(holder_script(&file, &go));
    let c = std::sync::Arc::new(c);
    let runner = c.clone();
    let url = mock_a.url();
    let holder = Holder {
        go,
        handle: Some(std::thread::spawn(move || {
            runner.run_against(&url, "hold the file", &[])
        })),
    };
    (c, file, holder, mock_a)
}

#[test]
fn a_second_claude_session_is_denied_the_file_the_first_holds_until_it_ends() {
    support::clients::each_claude(
        a_second_claude_session_is_denied_the_file_the_first_holds_until_it_ends_on,
    );
}

fn a_second_claude_session_is_denied_the_file_the_first_holds_until_it_ends_on(
    claude: &support::clients::Claude,
) {
    let (c, file, holder, _mock_a) = start_holder("e2e-locks", claude);
    let a = wait_for_claim(&c, &file);

    // Claude Code's Write refuses an existing file that was not read first (before any hook).
    let mock_b = AnthropicMock::start(vec![
        Turn::tool("Read", json!({"file_path": file})),
        Turn::tool("Write", json!({"file_path": file, "content": "from B\n"})),
        Turn::text("Could not write it."),
    ]);
    let run_b = c.run_against(&mock_b.url(), "write the file", &[]);
    assert_eq!(run_b.code, Some(0), "{}", run_b.describe());
    let errors = tool_errors(&mock_b.message_requests());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("is being edited by another agent"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains(&format!("claude session {}", &a[..8])),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("harness locks release"), "{}", errors[0]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from A\n");

    let run_a = holder.finish();
    assert_eq!(run_a.code, Some(0), "{}", run_a.describe());
    // A ended: its claim went with it, and B may write.
    let mock_b2 = AnthropicMock::start(vec![
        Turn::tool("Read", json!({"file_path": file})),
        Turn::tool("Write", json!({"file_path": file, "content": "from B\n"})),
        Turn::text("Wrote it."),
    ]);
    let run_b2 = c.run_against(&mock_b2.url(), "write the file", &[]);
    assert_eq!(run_b2.code, Some(0), "{}", run_b2.describe());
    assert!(tool_errors(&mock_b2.message_requests()).is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from B\n");
    assert_eq!(c.env.log_text(), "");
}

#[test]
fn a_gemini_run_in_write_mode_is_denied_an_edit_to_a_file_a_claude_session_holds() {
    let Some(gemini) = support::clients::gemini() else {
        return;
    };
    support::clients::each_claude(|claude| {
        a_gemini_run_in_write_mode_is_denied_an_edit_to_a_file_a_claude_session_holds_on(
            claude,
            gemini.clone(),
        )
    });
}

fn a_gemini_run_in_write_mode_is_denied_an_edit_to_a_file_a_claude_session_holds_on(
    claude: &support::clients::Claude,
    gemini: std::path::PathBuf,
) {
    let (c, file, holder, _mock_a) = start_holder("e2e-locks-gemini", claude);
    let a = wait_for_claim(&c, &file);

    let mock_g = GeminiMock::start(vec![
        GTurn::Call {
            name: "write_file".into(),
            args: json!({"file_path": "shared.txt", "content": "from Gemini\n"}),
        },
        GTurn::Text("The file is locked.".into()),
    ]);
    let g = Gemini::setup(&c.env, &c.project, gemini, mock_g.url());
    let run = g.run("write shared.txt");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let result = run
        .lines()
        .into_iter()
        .find(|l| l["type"] == "tool_result")
        .expect("a tool result");
    assert_eq!(result["status"], "error", "{result}");
    let message = result["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is being edited by another agent"),
        "{message}"
    );
    assert!(
        message.contains(&format!("claude session {}", &a[..8])),
        "{message}"
    );
    // The model was told: the next request carries the denial.
    let told = mock_g
        .chat_requests()
        .iter()
        .any(|b| b.to_string().contains("is being edited by another agent"));
    assert!(told, "the Gemini model received the reason");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from A\n");

    let run_a = holder.finish();
    assert_eq!(run_a.code, Some(0), "{}", run_a.describe());
    assert_eq!(c.env.log_text(), "");
}

#[test]
fn a_write_the_user_declines_leaves_the_file_free_for_another_session() {
    support::clients::each_claude(
        a_write_the_user_declines_leaves_the_file_free_for_another_session_on,
    );
}

fn a_write_the_user_declines_leaves_the_file_free_for_another_session_on(
    claude: &support::clients::Claude,
) {
    let c = std::sync::Arc::new(ClaudeEnv::new("e2e-declined", claude, String::new()));
    let file = c.project.join("shared.txt");
    let go = c.env.dir.path().join("go");
    // Session A, in default permission mode: its Write is refused (headless, nobody to ask), then
    // it waits in Bash (allowed) while B works.
    let mock_a = AnthropicMock::start(holder_script(&file, &go));
    let runner = c.clone();
    let url = mock_a.url();
    let holder = Holder {
        go: go.clone(),
        handle: Some(std::thread::spawn(move || {
            runner.run_in_mode(
                &url,
                "default",
                "write the file",
                &["--allowedTools", "Bash"],
            )
        })),
    };
    // A is in its Bash step once the Bash PreToolUse is recorded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(c.env.db.exists()
        && c.env
            .db()
            .query_row(
                "SELECT count(*) FROM events WHERE event = 'PreToolUse' AND tool_name = 'Bash'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
            > 0)
    {
        assert!(Instant::now() < deadline, "A never reached its Bash step");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!file.exists(), "A's Write was refused");
    let claims: i64 = c.env.count("SELECT count(*) FROM claims");
    assert_eq!(claims, 0, "a refused write holds no file");

    let mock_b = AnthropicMock::start(vec![
        Turn::tool("Write", json!({"file_path": file, "content": "from B\n"})),
        Turn::text("Wrote it."),
    ]);
    let run_b = c.run_against(&mock_b.url(), "write the file", &[]);
    assert_eq!(run_b.code, Some(0), "{}", run_b.describe());
    assert!(
        tool_errors(&mock_b.message_requests()).is_empty(),
        "{:?}",
        tool_errors(&mock_b.message_requests())
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from B\n");

    let run_a = holder.finish();
    assert_eq!(run_a.code, Some(0), "{}", run_a.describe());
    // Each later request repeats the history: the one refusal is in it from then on.
    let mut refused = tool_errors(&mock_a.message_requests());
    refused.dedup();
    assert_eq!(refused.len(), 1, "A's Write came back refused: {refused:?}");
    assert!(refused[0].contains("haven't granted"), "{}", refused[0]);
    // Its claim went when A moved on to its next tool, not at the end of a window.
    let freed: i64 = c
        .env
        .count("SELECT count(*) FROM lock_log WHERE action = 'refused'");
    assert_eq!(freed, 1);
    assert_eq!(c.env.log_text(), "");
}
